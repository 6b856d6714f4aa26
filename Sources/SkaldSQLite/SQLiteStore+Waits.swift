import Foundation
import GRDB
import SkaldCore
import SkaldEngine

/// Parked runs and participants' callbacks.
extension SQLiteStore {
    public func park(runID: String, until: Date) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE run SET parked_until = ? WHERE id = ? AND NOT \(StepRow.pendingCallbackSQL)",
                arguments: [until.timeIntervalSince1970, runID])
            if db.changesCount == 1 { return true }
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM run WHERE id = ?", arguments: [runID]) == true else { throw StoreError.unknownRun(runID) }
            return false
        }
    }

    public func unparkRuns(dueBy: Date, limit: Int) async throws -> [String] {
        // `+status`: read through `run_parked` (the few runs coming due), never through the status index, which would
        // visit every parked run on every look; and read first, so that a look that finds nothing writes nothing.
        let sql = """
            SELECT id FROM run WHERE parked_until <= ? AND +status IN ('running', 'compensating') ORDER BY parked_until LIMIT ?
            """
        let arguments: StatementArguments = [dueBy.timeIntervalSince1970, limit]
        guard try await pool.read({ db in try Bool.fetchOne(db, sql: "SELECT EXISTS (\(sql))", arguments: arguments) ?? false }) else { return [] }
        return try await write { db in
            let ids = try String.fetchAll(db, sql: sql, arguments: arguments)
            let unpark = try db.cachedStatement(sql: "UPDATE run SET parked_until = NULL WHERE id = ?")
            for id in ids { try unpark.execute(arguments: [id]) }
            return ids
        }
    }

    public func receiveCallback(token: String, signal: CallbackSignal, at: Date) async throws -> CallbackReceipt {
        try await write { db in
            guard
                let row = try CallbackRow.fetchOne(
                    db,
                    sql: """
                        SELECT callback.*, step.status AS step_status, step.attempts AS step_attempts FROM callback
                        JOIN step ON step.run_id = callback.run_id AND step.position = callback.position WHERE callback.token = ?
                        """, arguments: [token])
            else { return .unknown }
            let (receipt, update) = try row.receive(signal, at: at)
            if let columns = update?.columns {
                try db.execute(
                    sql: """
                        UPDATE callback SET status = coalesce(?, status), output = coalesce(?, output), error = coalesce(?, error),
                            received_at = coalesce(?, received_at), heartbeat_at = coalesce(?, heartbeat_at)
                        WHERE token = ?
                        """,
                    arguments: [columns.status, columns.output, columns.error, columns.receivedAt, columns.heartbeatAt, token])
                // A parked run with a callback to apply is due now: after a crash it is loaded again at start.
                if case .final? = update { try db.execute(sql: "UPDATE run SET parked_until = NULL WHERE id = ?", arguments: [row.runID]) }
            }
            return receipt
        }
    }

    public func waitingSteps() async throws -> [WaitKind: Int] {
        try await pool.read { db in
            var counts: [WaitKind: Int] = [:]
            for row in try Row.fetchAll(db, sql: StepRow.waitingCountsSQL) {
                counts[try RunRow.decode(WaitKind.self, row["kind"])] = row["n"]
            }
            return counts
        }
    }

    public func callbacks(runID: String) async throws -> [StoredCallback] {
        try await pool.read { db in
            try CallbackRow.fetchAll(
                db, sql: "SELECT * FROM callback WHERE run_id = ? AND (status IS NOT NULL OR heartbeat_at IS NOT NULL) ORDER BY position, attempt",
                arguments: [runID]
            ).map { try $0.stored() }
        }
    }
}

import Foundation
import GRDB
import SkaldCore
import SkaldEngine

/// Reading runs, their histories and attempts, and listing them.
extension SQLiteStore {
    /// Loads every unfinished run in three queries (runs, their definitions, their steps), however many there are.
    public func unfinishedRuns() async throws -> [StoredRun] {
        try await pool.read { db in
            let unfinished = "run.status IN ('running', 'compensating') AND run.parked_until IS NULL"
            let rows = try RunRow.fetchAll(db, sql: "SELECT * FROM run WHERE \(unfinished) ORDER BY created_at, id")
            guard !rows.isEmpty else { return [] }
            var documents: [String: JSONValue] = [:]
            let definitionRows = try Row.fetchAll(
                db, sql: "SELECT hash, document FROM definition WHERE hash IN (SELECT DISTINCT definition_hash FROM run WHERE \(unfinished))")
            for row in definitionRows { documents[row["hash"]] = try RunRow.json(row["document"], "definition \(row["hash"] as String)") }
            var steps: [String: [StepRow]] = [:]
            let stepRows = try StepRow.fetchAll(
                db, sql: "SELECT step.* FROM step JOIN run ON run.id = step.run_id WHERE \(unfinished) ORDER BY step.run_id, step.position")
            for row in stepRows { steps[row.runID ?? "", default: []].append(row) }
            return try rows.map { row in
                guard let document = documents[row.definitionHash] else {
                    throw StoreError(.unreadableRow, "the database has no definition \(row.definitionHash)")
                }
                return try row.storedRun(document: document, steps: steps[row.id] ?? [])
            }
        }
    }

    public func runCounts() async throws -> [RunStatus: Int] {
        try await pool.read { db in
            var counts: [RunStatus: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT status, count(*) AS n FROM run GROUP BY status") {
                counts[try RunRow.decode(RunStatus.self, row["status"])] = row["n"]
            }
            return counts
        }
    }

    public func run(id: String) async throws -> StoredRun? {
        try await pool.read { db in try Self.loadRun(id: id, db: db) }
    }

    static func loadRun(id: String, db: Database) throws -> StoredRun? {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT run.*, definition.document FROM run JOIN definition ON definition.hash = run.definition_hash
                        WHERE run.id = ?
                        """), arguments: [id])
        else { return nil }
        let steps = try StepRow.fetchAll(db.cachedStatement(sql: "SELECT * FROM step WHERE run_id = ? ORDER BY position"), arguments: [id])
        return try RunRow(row: row).storedRun(document: try RunRow.json(row["document"], "the definition of run \(id)"), steps: steps)
    }

    public func listRuns(_ query: RunQuery) async throws -> RunPage {
        try await pool.read { db in
            let filter = RunFilter(query)
            var arguments: StatementArguments = []
            for (_, value) in filter.conditions {
                switch value {
                case .text(let text): arguments += [text]
                case .real(let number): arguments += [number]
                }
            }
            arguments += [query.limit + 1]
            let rows = try RunRow.fetchAll(db, sql: filter.sql { _ in "?" }, arguments: arguments)
            return try RunFilter.page(rows, limit: query.limit)
        }
    }

    public func events(runID: String, after: Int64) async throws -> [StoredEvent] {
        try await pool.read { db in
            try EventRow.fetchAll(db.cachedStatement(sql: "SELECT * FROM event WHERE run_id = ? AND id > ? ORDER BY id"), arguments: [runID, after])
                .map { try $0.event() }
        }
    }

    public func attempts(runID: String) async throws -> [AttemptRecord] {
        try await pool.read { db in
            try AttemptRow.fetchAll(
                db.cachedStatement(sql: "SELECT * FROM attempt WHERE run_id = ? ORDER BY started_at, position, phase, number"), arguments: [runID]
            ).map { try $0.record(runID: runID) }
        }
    }
}

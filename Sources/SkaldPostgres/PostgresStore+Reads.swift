import Foundation
import Logging
import PostgresNIO
import SkaldCore
import SkaldEngine

/// Reading runs, their histories and attempts, and listing them.
extension PostgresStore {
    public func unfinishedRuns() async throws -> [StoredRun] {
        let logger = logger
        return try await reading { db in
            let unfinished = "run.status IN ('running', 'compensating') AND run.parked_until IS NULL"
            let rows = try await db.query(PostgresQuery(unsafeSQL: "SELECT * FROM run WHERE \(unfinished) ORDER BY created_at, id"), logger: logger)
                .collect()
            guard !rows.isEmpty else { return [] }
            var documents: [String: JSONValue] = [:]
            let definitionRows = try await db.query(
                PostgresQuery(
                    unsafeSQL: "SELECT hash, document FROM definition WHERE hash IN (SELECT DISTINCT definition_hash FROM run WHERE \(unfinished))"),
                logger: logger
            ).collect()
            for row in definitionRows {
                let (hash, document) = try row.decode((String, String).self)
                documents[hash] = try RunRow.json(document, "definition \(hash)")
            }
            var steps: [String: [StepRow]] = [:]
            let stepRows = try await db.query(
                PostgresQuery(
                    unsafeSQL: "SELECT step.* FROM step JOIN run ON run.id = step.run_id WHERE \(unfinished) ORDER BY step.run_id, step.position"),
                logger: logger
            ).collect()
            for row in stepRows {
                let step = try PostgresRowDecoder.decode(StepRow.self, from: row)
                steps[step.runID ?? "", default: []].append(step)
            }
            return try rows.map { row in
                let run = try PostgresRowDecoder.decode(RunRow.self, from: row)
                guard let document = documents[run.definitionHash] else {
                    throw StoreError(.unreadableRow, "the database has no definition \(run.definitionHash)")
                }
                return try run.storedRun(document: document, steps: steps[run.id] ?? [])
            }
        }
    }

    /// The runs with these ids, in the order given (ids without a run are left out).
    static func loadRuns(ids: [String], _ db: PostgresConnection, _ logger: Logger) async throws -> [StoredRun] {
        guard !ids.isEmpty else { return [] }
        let rows = try await db.query(
            "SELECT run.*, definition.document FROM run JOIN definition ON definition.hash = run.definition_hash WHERE run.id = ANY(\(ids))",
            logger: logger
        ).collect()
        var steps: [String: [StepRow]] = [:]
        for row in try await db.query("SELECT * FROM step WHERE run_id = ANY(\(ids)) ORDER BY run_id, position", logger: logger).collect() {
            let step = try PostgresRowDecoder.decode(StepRow.self, from: row)
            steps[step.runID ?? "", default: []].append(step)
        }
        var byID: [String: StoredRun] = [:]
        var documents: [String: JSONValue] = [:]
        for row in rows {
            let run = try PostgresRowDecoder.decode(RunRow.self, from: row)
            let document = try documents[run.definitionHash]
                ?? RunRow.json(try row.makeRandomAccess()["document"].decode(String.self), "definition \(run.definitionHash)")
            documents[run.definitionHash] = document
            byID[run.id] = try run.storedRun(document: document, steps: steps[run.id] ?? [])
        }
        return ids.compactMap { byID[$0] }
    }

    static func binds(_ values: any (PostgresNonThrowingEncodable & Sendable)...) -> PostgresBindings {
        var bindings = PostgresBindings()
        for value in values { bindings.append(value) }
        return bindings
    }

    public func run(id: String) async throws -> StoredRun? {
        let logger = logger
        return try await reading { db in try await Self.loadRun(id: id, db, logger) }
    }

    static func loadRun(id: String, _ db: PostgresConnection, _ logger: Logger) async throws -> StoredRun? {
        guard
            let row = try await db.query(
                "SELECT run.*, definition.document FROM run JOIN definition ON definition.hash = run.definition_hash WHERE run.id = \(id)",
                logger: logger
            ).collect().first
        else { return nil }
        let steps = try await db.query("SELECT * FROM step WHERE run_id = \(id) ORDER BY position", logger: logger).collect()
            .map { try PostgresRowDecoder.decode(StepRow.self, from: $0) }
        let document = try RunRow.json(try row.makeRandomAccess()["document"].decode(String.self), "the definition of run \(id)")
        return try PostgresRowDecoder.decode(RunRow.self, from: row).storedRun(document: document, steps: steps)
    }

    public func listRuns(_ query: RunQuery) async throws -> RunPage {
        let logger = logger
        let filter = RunFilter(query)
        var bindings = PostgresBindings()
        for (_, value) in filter.conditions {
            switch value {
            case .text(let text): bindings.append(text)
            case .real(let number): bindings.append(number)
            }
        }
        bindings.append(query.limit + 1)
        let sql = PostgresQuery(unsafeSQL: filter.sql { "$\($0)" }, binds: bindings)
        let limit = query.limit
        return try await reading { db in
            let rows = try await db.query(sql, logger: logger).collect().map { try PostgresRowDecoder.decode(RunRow.self, from: $0) }
            return try RunFilter.page(rows, limit: limit)
        }
    }

    public func events(runID: String, after: Int64) async throws -> [StoredEvent] {
        let logger = logger
        return try await reading { db in
            try await db.query(
                "SELECT id, at, kind, step, phase, attempt, message, data FROM event WHERE run_id = \(runID) AND id > \(after) ORDER BY id",
                logger: logger
            ).collect().map { try PostgresRowDecoder.decode(EventRow.self, from: $0).event() }
        }
    }

    public func attempts(runID: String) async throws -> [AttemptRecord] {
        let logger = logger
        return try await reading { db in
            try await db.query(
                """
                SELECT position, step_name, phase, number, started_at, sends, finished_at, succeeded, http_status, error, duration_ms, node
                FROM attempt WHERE run_id = \(runID) ORDER BY started_at, position, phase, number
                """, logger: logger
            ).collect().map { try PostgresRowDecoder.decode(AttemptRow.self, from: $0).record(runID: runID) }
        }
    }
}

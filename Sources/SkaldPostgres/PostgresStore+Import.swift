import Foundation
import Logging
import PostgresNIO
import SkaldCore
import SkaldEngine

/// `skald import` into PostgreSQL: every exported run inserted as it was, in one transaction.
extension PostgresStore {
    public func importRuns(events: [RunEvent], from next: @escaping @Sendable () throws -> ExportedRun?) async throws -> ImportedRuns {
        let logger = logger
        return try await transaction { db in
            var tally = ImportedRuns()
            while let exported = try next() {
                tally.add(try await Self.importRun(exported, events: events, db, logger), of: exported.run)
            }
            return tally
        }
    }

    static func importRun(_ exported: ExportedRun, events: [RunEvent], _ db: PostgresConnection, _ logger: Logger) async throws
        -> ImportedRun
    {
        let run = exported.run
        let state = run.state
        let (id, hash, name, version, key) = (run.id, run.definitionHash, run.sagaName, run.sagaVersion, run.idempotencyKey)
        let (document, input, createdAt, updatedAt) = (
            run.definitionDocument.jsonText, run.input.jsonText, run.createdAt.timeIntervalSince1970, run.updatedAt.timeIntervalSince1970
        )
        let unfinished = !state.status.isTerminal
        func time(_ date: Date?) -> JSONValue { date.map { .double($0.timeIntervalSince1970) } ?? .null }
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        func int(_ value: Int?) -> JSONValue { value.map { .int(Int64($0)) } ?? .null }
        let steps = TransitionStatements.stepsJSON(state, at: Array(state.steps.indices), names: true).jsonText
        let history = TransitionStatements.eventsJSON(exported.events + events).jsonText
        let attempts = JSONValue.array(
            exported.attempts.map { attempt in
                [
                    "position": int(attempt.key.step), "phase": .string(attempt.key.phase.rawValue), "number": int(attempt.key.number),
                    "step_name": .string(attempt.key.stepName), "started_at": time(attempt.startedAt), "sends": int(attempt.sends),
                    "finished_at": time(attempt.finishedAt), "succeeded": attempt.succeeded.map(JSONValue.bool) ?? .null,
                    "http_status": int(attempt.httpStatus), "error": text(attempt.error), "duration_ms": int(attempt.durationMs),
                    "node": text(attempt.node),
                ]
            }
        ).jsonText
        do {
            if try await db.query("SELECT 1 FROM run WHERE id = \(id)", logger: logger).collect().first != nil { return .alreadyPresent }
            if let key, let holder = try await Self.runID(idempotencyKey: key, db, logger) {
                throw StoreError.idempotencyKeyTaken(key, by: holder, importing: id)
            }
            try await db.query(
                """
                INSERT INTO definition (hash, name, version, document, created_at) VALUES (\(hash), \(name), \(version), \(document), \(createdAt))
                ON CONFLICT (hash) DO NOTHING
                """, logger: logger)
            try await db.query(
                """
                INSERT INTO run (id, definition_hash, saga_name, saga_version, status, input, failure_step, failure_reason,
                    compensation_failure_step, compensation_failure_reason, stuck_step, stuck_reason, deadline_at, created_at, updated_at,
                    idempotency_key, owner, trace_parent, trace_state)
                VALUES (\(id), \(hash), \(name), \(version), \(state.status.rawValue), \(input), \(state.failure?.step), \(state.failure?.reason),
                    \(state.compensationFailure?.step), \(state.compensationFailure?.reason), \(state.stuck?.step), \(state.stuck?.reason),
                    \(state.deadlineAt?.timeIntervalSince1970), \(createdAt), \(updatedAt), \(key), NULL, \(run.trace?.parent), \(run.trace?.state))
                """, logger: logger)
            try await db.query(
                """
                INSERT INTO step (run_id, position, name, status, attempts, compensation_attempts, compensation_attempts_base, attempts_base,
                    first_attempt_at, compensation_first_attempt_at, due_at, response_status, response_body, last_error, outcome_unknown,
                    resolved_by, resolved_note, resolved_at, wait)
                SELECT \(id), x.position, x.name, x.status, x.attempts, x.compensation_attempts, x.compensation_attempts_base, x.attempts_base,
                    x.first_attempt_at, x.compensation_first_attempt_at, x.due_at, x.response_status, x.response_body, x.last_error, x.outcome_unknown,
                    x.resolved_by, x.resolved_note, x.resolved_at, x.wait
                FROM jsonb_to_recordset(\(steps)::jsonb) AS x(
                    position int, name text, status text, attempts int, compensation_attempts int, compensation_attempts_base int,
                    attempts_base int, first_attempt_at float8, compensation_first_attempt_at float8, due_at float8, response_status int,
                    response_body text, last_error text, outcome_unknown boolean, resolved_by text, resolved_note text, resolved_at float8,
                    wait text)
                """, logger: logger)
            // The token of a callback step's current attempt, so its participant can still call back.
            try await db.query(
                """
                INSERT INTO callback (token, run_id, position, attempt, created_at)
                SELECT x.callback_token, \(id), x.position, x.callback_attempt, \(updatedAt)
                FROM jsonb_to_recordset(\(steps)::jsonb) AS x(position int, callback_token text, callback_attempt int)
                WHERE x.callback_token IS NOT NULL
                ON CONFLICT (token) DO NOTHING
                """, logger: logger)
            try await db.query(
                """
                INSERT INTO event (run_id, at, kind, step, phase, attempt, message, data)
                SELECT \(id), x.at, x.kind, x.step, x.phase, x.attempt, x.message, x.data
                FROM jsonb_to_recordset(\(history)::jsonb)
                    AS x(n int, at float8, kind text, step text, phase text, attempt int, message text, data text)
                ORDER BY x.n
                """, logger: logger)
            try await db.query(
                """
                INSERT INTO attempt (run_id, position, phase, number, step_name, started_at, sends, finished_at, succeeded, http_status, error,
                    duration_ms, node)
                SELECT \(id), x.position, x.phase, x.number, x.step_name, x.started_at, x.sends, x.finished_at, x.succeeded, x.http_status,
                    x.error, x.duration_ms, x.node
                FROM jsonb_to_recordset(\(attempts)::jsonb) AS x(
                    position int, phase text, number int, step_name text, started_at float8, sends int, finished_at float8, succeeded boolean,
                    http_status int, error text, duration_ms int, node text)
                """, logger: logger)
            // Delivered on commit: a node that runs claims the run.
            if unfinished { try await db.query("SELECT pg_notify(\(Self.channel), 'work')", logger: logger) }
            return .imported
        }
    }
}

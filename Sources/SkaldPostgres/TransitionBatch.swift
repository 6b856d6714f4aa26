import Foundation
import PostgresNIO
import SkaldCore
import SkaldEngine

/// Many runs' transitions in **one statement**: one round trip and one commit for all of them (group commit, as
/// `GroupCommitter` does for SQLite).
///
/// Fencing stays per run: a transition is applied only when this node owns its run (at the claim it holds it by)
/// and its attempt is as the transition expects (not stored yet when it starts one; in flight when it sends one
/// again or finishes it). A transition refused on either count leaves nothing behind, and the rest of the batch
/// commits. The answer names the transitions applied; `PostgresStore.write` sends each refused one again in a
/// statement of its own (`TransitionStatements`), which says exactly why it is refused.
///
/// Parameters: $1 the transitions (a JSON array, see `TransitionBatch.Entry`), $2 this node.
struct TransitionBatchStatement: PostgresPreparedStatement {
    static let name = "skald_transition_batch"
    static let bindingDataTypes: [PostgresDataType] = [.text, .text]
    typealias Row = Int

    var transitions: String
    var owner: String

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(transitions)
        bindings.append(owner)
        return bindings
    }

    /// One row per transition applied: its number in the batch.
    func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }

    static let sql = """
        WITH t AS (
            SELECT * FROM json_to_recordset($1::json) AS t(
                n int, run_id text, status text, failure_step text, failure_reason text, compensation_failure_step text,
                compensation_failure_reason text, stuck_step text, stuck_reason text, deadline_at float8, at float8, epoch int8,
                steps json, events json, op text, position int, phase text, number int, step_name text, succeeded boolean,
                http_status int, error text, duration_ms int8)),
        -- Each attempt looked up by its key (a lateral subquery: one index probe per transition, never a scan).
        ok AS (
            SELECT t.* FROM t
            LEFT JOIN LATERAL (
                SELECT a.finished_at IS NULL AS open FROM attempt a
                WHERE t.op IS NOT NULL AND a.run_id = t.run_id AND a.position = t.position AND a.phase = t.phase AND a.number = t.number
                LIMIT 1) AS a ON true
            WHERE t.op IS NULL OR (t.op = 'started' AND a.open IS NULL) OR (t.op IN ('resent', 'finished') AND a.open)),
        r AS (
            UPDATE run SET status = ok.status, failure_step = ok.failure_step, failure_reason = ok.failure_reason,
                compensation_failure_step = ok.compensation_failure_step, compensation_failure_reason = ok.compensation_failure_reason,
                stuck_step = ok.stuck_step, stuck_reason = ok.stuck_reason, deadline_at = ok.deadline_at, updated_at = ok.at,
                parked_until = NULL
            FROM ok
            WHERE run.id = ok.run_id AND run.owner = $2 AND (ok.epoch IS NULL OR run.claim_epoch = ok.epoch)
            RETURNING ok.n),
        g AS (SELECT ok.* FROM ok JOIN r ON r.n = ok.n),
        s AS (
            UPDATE step SET \(TransitionStatements.stepSet)
            FROM g CROSS JOIN LATERAL json_to_recordset(g.steps) AS x(\(TransitionStatements.stepRecord))
            WHERE step.run_id = g.run_id AND step.position = x.position
            RETURNING 1),
        i AS (
            INSERT INTO step (run_id, position, name, \(TransitionStatements.stepNames))
            SELECT g.run_id, x.position, x.item, \(TransitionStatements.stepValues)
            FROM g CROSS JOIN LATERAL json_to_recordset(g.steps) AS x(\(TransitionStatements.itemRecord))
            WHERE x.item IS NOT NULL
            ON CONFLICT (run_id, position) DO NOTHING
            RETURNING 1),
        k AS (
            INSERT INTO callback (token, run_id, position, attempt, created_at)
            SELECT x.callback_token, g.run_id, x.position, x.callback_attempt, g.at
            FROM g CROSS JOIN LATERAL json_to_recordset(g.steps) AS x(position int, callback_token text, callback_attempt int)
            -- A token stored already is left alone without waiting on its row, which a callback being received may hold
            -- (the transition and the callback would deadlock): looked up first, one index probe per token.
            LEFT JOIN LATERAL (SELECT true AS found FROM callback c WHERE c.token = x.callback_token LIMIT 1) AS c ON true
            WHERE x.callback_token IS NOT NULL AND c.found IS NULL
            ON CONFLICT (token) DO NOTHING
            RETURNING 1),
        e AS (
            INSERT INTO event (run_id, at, kind, step, phase, attempt, message, data)
            SELECT g.run_id, x.at, x.kind, x.step, x.phase, x.attempt, x.message, x.data
            FROM g CROSS JOIN LATERAL json_to_recordset(g.events)
                AS x(n int, at float8, kind text, step text, phase text, attempt int, message text, data text)
            ORDER BY g.n, x.n
            RETURNING 1),
        started AS (
            INSERT INTO attempt (run_id, position, phase, number, step_name, started_at, node)
            SELECT g.run_id, g.position, g.phase, g.number, g.step_name, g.at, $2 FROM g WHERE g.op = 'started'
            RETURNING 1),
        resent AS (
            UPDATE attempt SET sends = sends + 1, started_at = g.at, node = $2
            FROM g
            WHERE g.op = 'resent' AND attempt.run_id = g.run_id AND attempt.position = g.position AND attempt.phase = g.phase
                AND attempt.number = g.number
            RETURNING 1),
        finished AS (
            UPDATE attempt SET finished_at = g.at, succeeded = g.succeeded, http_status = g.http_status, error = g.error,
                duration_ms = g.duration_ms
            FROM g
            WHERE g.op = 'finished' AND attempt.run_id = g.run_id AND attempt.position = g.position AND attempt.phase = g.phase
                AND attempt.number = g.number
            RETURNING 1),
        -- Nodes with a long poll on one of these runs wake and read its new events (payloads are at most 8,000 bytes).
        notified AS (
            SELECT pg_notify('\(PostgresStore.channel)', '\(PostgresStore.eventsPrefix)' || string_agg(c.run_id, ','))
            FROM (SELECT g.run_id, sum(octet_length(g.run_id) + 1) OVER (ORDER BY g.n) / 7000 AS chunk FROM g) AS c
            GROUP BY c.chunk)
        SELECT r.n FROM r WHERE (SELECT count(*) FROM notified) >= 0
        """
}

/// One transition of a batch, as `TransitionBatchStatement` reads it.
enum TransitionBatch {
    static func entry(_ common: TransitionStatements.Common, attempt: PostgresStore.AttemptWrite?) -> [String: JSONValue] {
        let state = common.state
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        var entry: [String: JSONValue] = [
            "run_id": .string(common.runID), "status": .string(state.status.rawValue),
            "failure_step": text(state.failure?.step), "failure_reason": text(state.failure?.reason),
            "compensation_failure_step": text(state.compensationFailure?.step),
            "compensation_failure_reason": text(state.compensationFailure?.reason),
            "stuck_step": text(state.stuck?.step), "stuck_reason": text(state.stuck?.reason),
            "deadline_at": state.deadlineAt.map { .double($0.timeIntervalSince1970) } ?? .null, "at": .double(common.at),
            "epoch": common.epoch.map { .int($0) } ?? .null, "steps": common.steps, "events": common.events,
        ]
        func key(_ key: AttemptKey, _ op: String) {
            entry["op"] = .string(op)
            entry["position"] = .int(Int64(key.step))
            entry["phase"] = .string(key.phase.rawValue)
            entry["number"] = .int(Int64(key.number))
        }
        switch attempt {
        case nil: break
        case .started(let attempt)?:
            key(attempt, "started")
            entry["step_name"] = .string(attempt.stepName)
        case .resent(let attempt)?:
            key(attempt, "resent")
        case .finished(let result)?:
            key(result.attempt, "finished")
            var record = AttemptRecord(key: result.attempt, startedAt: result.finishedAt)
            record.finish(with: result)
            entry["succeeded"] = record.succeeded.map(JSONValue.bool) ?? .null
            entry["http_status"] = record.httpStatus.map { .int(Int64($0)) } ?? .null
            entry["error"] = text(record.error)
            entry["duration_ms"] = record.durationMs.map { .int(Int64($0)) } ?? .null
        }
        return entry
    }
}

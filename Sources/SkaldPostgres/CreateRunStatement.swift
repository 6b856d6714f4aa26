import Foundation
import PostgresNIO
import SkaldCore
import SkaldEngine

/// Creates a run in **one statement** (one round trip, one commit): its definition (kept if stored already), the run
/// row, its steps and its first events, and, for a run no node owns yet, the signal that wakes the nodes to claim
/// it (delivered when the statement commits). A prepared statement, parsed and planned once per connection.
///
/// When another run holds the idempotency key, nothing is stored and the answer is 0 (the caller reads that run);
/// otherwise 1.
struct CreateRunStatement: PostgresPreparedStatement {
    static let name = "skald_create_run"
    static let bindingDataTypes: [PostgresDataType] = [
        .text, .text, .text, .int8, .text, .text, .text, .float8, .text, .float8, .text, .text, .text, .text, .text,
    ]
    typealias Row = Int

    static let sql = """
        WITH d AS (
            INSERT INTO definition (hash, name, version, document, created_at) VALUES ($2, $3, $4, $5, $8)
            ON CONFLICT (hash) DO NOTHING
            RETURNING 1),
        r AS (
            INSERT INTO run (id, definition_hash, saga_name, saga_version, status, input, created_at, updated_at, idempotency_key,
                deadline_at, owner, trace_parent, trace_state)
            VALUES ($1, $2, $3, $4, $7, $6, $8, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING id),
        s AS (
            INSERT INTO step (run_id, position, name, status, due_at)
            SELECT r.id, x.position, x.name, x.status, x.due_at
            FROM r CROSS JOIN jsonb_to_recordset($14::jsonb) AS x(position int, name text, status text, due_at float8)
            RETURNING 1),
        e AS (
            INSERT INTO event (run_id, at, kind, step, phase, attempt, message, data)
            SELECT r.id, x.at, x.kind, x.step, x.phase, x.attempt, x.message, x.data
            FROM r CROSS JOIN jsonb_to_recordset($15::jsonb)
                AS x(n int, at float8, kind text, step text, phase text, attempt int, message text, data text)
            ORDER BY x.n
            RETURNING 1),
        w AS (SELECT pg_notify('\(PostgresStore.channel)', 'work') FROM r WHERE $11::text IS NULL)
        SELECT (SELECT count(*) FROM r)::integer
            + 0 * ((SELECT count(*) FROM d) + (SELECT count(*) FROM s) + (SELECT count(*) FROM e) + (SELECT count(*) FROM w))::integer
        """

    var bindings: PostgresBindings

    init(_ run: NewRun, state: RunState, events: [RunEvent], owner: String?) {
        let definition = run.definition
        var bindings = PostgresBindings(capacity: 15)
        bindings.append(run.id)
        bindings.append(definition.contentHash)
        bindings.append(definition.name)
        bindings.append(definition.version)
        bindings.append(definition.documentText)
        bindings.append(run.input.jsonText)
        bindings.append(state.status.rawValue)
        bindings.append(run.createdAt.timeIntervalSince1970)
        TransitionStatements.Common.append(run.idempotencyKey, to: &bindings)
        TransitionStatements.Common.append(state.deadlineAt?.timeIntervalSince1970, to: &bindings)
        TransitionStatements.Common.append(owner, to: &bindings)
        TransitionStatements.Common.append(run.trace?.parent, to: &bindings)
        TransitionStatements.Common.append(run.trace?.state, to: &bindings)
        bindings.append(
            JSONValue.array(
                state.steps.enumerated().map { position, step in
                    [
                        "position": .int(Int64(position)), "name": .string(step.name), "status": .string(step.status.rawValue),
                        "due_at": step.dueAt.map { .double($0.timeIntervalSince1970) } ?? .null,
                    ]
                }
            ).jsonText)
        bindings.append(TransitionStatements.eventsJSON(events).jsonText)
        self.bindings = bindings
    }

    func makeBindings() -> PostgresBindings { bindings }

    func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
}

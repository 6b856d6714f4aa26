import Foundation
import PostgresNIO
import SkaldCore
import SkaldEngine

/// Creates runs in **one statement** (group commit of new runs: see `StatementBatcher`): each run's definition (kept if
/// stored already), run row, steps and first events, and one `NOTIFY` that wakes the nodes to claim the runs no node
/// owns yet. A run whose idempotency key another run holds (stored before, or earlier in the same batch)
/// is left out; the answer names the runs created, by their number in the batch.
///
/// Parameter: $1 the runs (a JSON array, see `CreateRunStatement.entry`; a definition's document is given once per
/// batch, on the first run of it).
struct CreateRunsStatement: PostgresPreparedStatement {
    static let name = "skald_create_runs"
    static let bindingDataTypes: [PostgresDataType] = [.text]
    typealias Row = Int

    var runs: String

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(runs)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }

    static let sql = """
        WITH c AS (
            SELECT * FROM json_to_recordset($1::json) AS c(
                n int, id text, hash text, name text, version int8, document text, status text, input text, created_at float8,
                idempotency_key text, deadline_at float8, owner text, trace_parent text, trace_state text, steps json, events json)),
        d AS (
            INSERT INTO definition (hash, name, version, document, created_at)
            SELECT c.hash, c.name, c.version, c.document, c.created_at FROM c WHERE c.document IS NOT NULL
            ON CONFLICT (hash) DO NOTHING
            RETURNING 1),
        r AS (
            INSERT INTO run (id, definition_hash, saga_name, saga_version, status, input, created_at, updated_at, idempotency_key,
                deadline_at, owner, trace_parent, trace_state)
            SELECT c.id, c.hash, c.name, c.version, c.status, c.input, c.created_at, c.created_at, c.idempotency_key, c.deadline_at,
                c.owner, c.trace_parent, c.trace_state
            FROM c ORDER BY c.n
            ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING id),
        g AS (SELECT c.* FROM c JOIN r ON r.id = c.id),
        s AS (
            INSERT INTO step (run_id, position, name, status, due_at)
            SELECT g.id, x.position, x.name, x.status, x.due_at
            FROM g CROSS JOIN LATERAL json_to_recordset(g.steps) AS x(position int, name text, status text, due_at float8)
            RETURNING 1),
        e AS (
            INSERT INTO event (run_id, at, kind, step, phase, attempt, message, data)
            SELECT g.id, x.at, x.kind, x.step, x.phase, x.attempt, x.message, x.data
            FROM g CROSS JOIN LATERAL json_to_recordset(g.events)
                AS x(n int, at float8, kind text, step text, phase text, attempt int, message text, data text)
            ORDER BY g.n, x.n
            RETURNING 1),
        -- One signal for the batch: the nodes wake and claim the runs no node owns yet.
        w AS (SELECT pg_notify('\(PostgresStore.channel)', 'work') WHERE EXISTS (SELECT 1 FROM g WHERE g.owner IS NULL))
        SELECT g.n FROM g
        WHERE (SELECT count(*) FROM d) + (SELECT count(*) FROM s) + (SELECT count(*) FROM e) + (SELECT count(*) FROM w) >= 0
        """
}

/// New runs as `CreateRunsStatement` reads them.
enum CreateRunStatement {
    /// A new run as `CreateRunsStatement` reads it.
    static func entry(_ run: NewRun, state: RunState, events: [RunEvent], owner: String?) -> [String: JSONValue] {
        let definition = run.definition
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        return [
            "id": .string(run.id), "hash": .string(definition.contentHash), "name": .string(definition.name),
            "version": .int(Int64(definition.version)), "document": .string(definition.documentText),
            "status": .string(state.status.rawValue), "input": .string(run.input.jsonText),
            "created_at": .double(run.createdAt.timeIntervalSince1970), "idempotency_key": text(run.idempotencyKey),
            "deadline_at": state.deadlineAt.map { .double($0.timeIntervalSince1970) } ?? .null, "owner": text(owner),
            "trace_parent": text(run.trace?.parent), "trace_state": text(run.trace?.state), "steps": steps(state),
            "events": TransitionStatements.eventsJSON(events),
        ]
    }

    /// The new run's steps, as both statements read them.
    static func steps(_ state: RunState) -> JSONValue {
        JSONValue.array(
            state.steps.enumerated().map { position, step in
                [
                    "position": .int(Int64(position)), "name": .string(step.name), "status": .string(step.status.rawValue),
                    "due_at": step.dueAt.map { .double($0.timeIntervalSince1970) } ?? .null,
                ]
            })
    }

    /// The batch's runs as `CreateRunsStatement` takes them: each definition's document only once.
    static func batch(_ entries: [[String: JSONValue]]) -> String {
        var documented: Set<String> = []
        return JSONValue.array(
            entries.map { entry in
                var entry = entry
                if case .string(let hash)? = entry["hash"], !documented.insert(hash).inserted { entry["document"] = .null }
                return .object(entry)
            }
        ).jsonText
    }
}

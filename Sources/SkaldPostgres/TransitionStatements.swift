import Foundation
import PostgresNIO
import SkaldCore
import SkaldEngine

/// The one statement that stores a transition (see `PostgresStore.write`), in its four shapes, as prepared statements:
/// each connection parses and plans each shape once, instead of once per transition (which was most of the server's
/// time per transition). Every value is a parameter, NULLs included, so the text of each shape never changes.
///
/// Parameters: $1 run, $2 owner (this node), $3 status, $4–$9 failure, compensation failure and stuck (step, reason),
/// $10 deadline, $11 time, $12 the changed steps and $13 the events (JSON arrays), $14 the claim epoch the writer holds
/// the run by (NULL: any), then the attempt's own.
enum TransitionStatements {
    /// The step columns a transition writes, in one list for every statement that stores transitions (one at a
    /// time here, in batches in `TransitionBatchStatement`), with the types `json_to_recordset` reads them as.
    static let stepColumns: [(name: String, type: String)] = [
        ("status", "text"), ("attempts", "int"), ("compensation_attempts", "int"), ("compensation_attempts_base", "int"),
        ("attempts_base", "int"), ("first_attempt_at", "float8"), ("compensation_first_attempt_at", "float8"), ("due_at", "float8"),
        ("response_status", "int"), ("response_body", "text"), ("last_error", "text"), ("outcome_unknown", "boolean"),
        ("resolved_by", "text"), ("resolved_note", "text"), ("resolved_at", "float8"), ("wait", "text"),
    ]
    /// `status = x.status, …`: a step row updated from the record `x`.
    static let stepSet = stepColumns.map { "\($0.name) = x.\($0.name)" }.joined(separator: ", ")
    /// The record a changed step is read as: its position, then its columns.
    static let stepRecord = (["position int"] + stepColumns.map { "\($0.name) \($0.type)" }).joined(separator: ", ")
    /// The record a new item's step is read as (its name as `item`).
    static let itemRecord = (["position int", "item text"] + stepColumns.map { "\($0.name) \($0.type)" }).joined(separator: ", ")
    /// The columns, and their values from the record `x`, of a step row inserted.
    static let stepNames = stepColumns.map(\.name).joined(separator: ", ")
    static let stepValues = stepColumns.map { "x.\($0.name)" }.joined(separator: ", ")

    /// The run (fenced on the owner), the changed steps and the events; `a` is the attempt's CTE when there is one.
    static func sql(attempt: String?) -> String {
        let prefix = """
            WITH r AS (
                UPDATE run SET status = $3, failure_step = $4, failure_reason = $5, compensation_failure_step = $6,
                    compensation_failure_reason = $7, stuck_step = $8, stuck_reason = $9, deadline_at = $10, updated_at = $11,
                    parked_until = NULL
                WHERE id = $1 AND owner = $2 AND ($14::int8 IS NULL OR claim_epoch = $14::int8)
                RETURNING id),
            s AS (
                UPDATE step SET \(stepSet)
                FROM jsonb_to_recordset($12::jsonb) AS x(\(stepRecord))
                WHERE step.run_id = $1 AND step.position = x.position AND EXISTS (SELECT 1 FROM r)
                RETURNING 1),
            i AS (
                INSERT INTO step (run_id, position, name, \(stepNames))
                SELECT $1, x.position, x.item, \(stepValues)
                FROM jsonb_to_recordset($12::jsonb) AS x(\(itemRecord))
                WHERE x.item IS NOT NULL AND EXISTS (SELECT 1 FROM r)
                    AND NOT EXISTS (SELECT 1 FROM step o WHERE o.run_id = $1 AND o.position = x.position)
                ON CONFLICT (run_id, position) DO NOTHING
                RETURNING 1),
            k AS (
                INSERT INTO callback (token, run_id, position, attempt, created_at)
                SELECT x.callback_token, $1, x.position, x.callback_attempt, $11
                FROM jsonb_to_recordset($12::jsonb) AS x(position int, callback_token text, callback_attempt int)
                WHERE x.callback_token IS NOT NULL AND EXISTS (SELECT 1 FROM r)
                    AND NOT EXISTS (SELECT 1 FROM callback c WHERE c.token = x.callback_token)
                ON CONFLICT (token) DO NOTHING
                RETURNING 1),
            e AS (
                INSERT INTO event (run_id, at, kind, step, phase, attempt, message, data)
                SELECT $1, x.at, x.kind, x.step, x.phase, x.attempt, x.message, x.data
                FROM jsonb_to_recordset($13::jsonb)
                    AS x(n int, at float8, kind text, step text, phase text, attempt int, message text, data text)
                WHERE EXISTS (SELECT 1 FROM r)
                ORDER BY x.n
                RETURNING 1),
            -- Nodes with a long poll on the run wake and read its new events.
            n AS (SELECT pg_notify('\(PostgresStore.channel)', '\(PostgresStore.eventsPrefix)' || $1) FROM r)
            """
        guard let attempt else {
            return prefix + """

                SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM r) THEN skald_refuse('\(SQLState.notOwner)', 'skald: not the owner')
                    ELSE (SELECT count(*) FROM s)::integer + (SELECT count(*) FROM e)::integer + (SELECT count(*) FROM n)::integer END
                """
        }
        return prefix + ",\n" + attempt + """

            SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM r) THEN skald_refuse('\(SQLState.notOwner)', 'skald: not the owner')
                WHEN NOT EXISTS (SELECT 1 FROM a) THEN skald_refuse('\(SQLState.attemptNotInFlight)', 'skald: attempt not in flight')
                ELSE (SELECT count(*) FROM s)::integer + (SELECT count(*) FROM e)::integer + (SELECT count(*) FROM n)::integer END
            """
    }

    /// Step rows as `jsonb_to_recordset` reads them (with `name` too when the rows are new).
    static func stepsJSON(_ state: RunState, at positions: [Int], names: Bool = false) -> JSONValue {
        JSONValue.array(
            positions.map { position in
                let step = state.steps[position]
                var record: [String: JSONValue] = [
                    "position": .int(Int64(position)), "status": .string(step.status.rawValue), "attempts": .int(Int64(step.attempts)),
                    "compensation_attempts": .int(Int64(step.compensationAttempts)),
                    "compensation_attempts_base": .int(Int64(step.compensationAttemptsBase)), "attempts_base": .int(Int64(step.attemptsBase)),
                    "first_attempt_at": step.firstAttemptAt.map { .double($0.timeIntervalSince1970) } ?? .null,
                    "compensation_first_attempt_at": step.compensationFirstAttemptAt.map { .double($0.timeIntervalSince1970) } ?? .null,
                    "due_at": step.dueAt.map { .double($0.timeIntervalSince1970) } ?? .null,
                    "response_status": step.response.map { .int(Int64($0.status)) } ?? .null,
                    "response_body": step.response.map { .string($0.body.jsonText) } ?? .null,
                    "last_error": step.lastError.map(JSONValue.string) ?? .null, "outcome_unknown": .bool(step.outcomeUnknown),
                    "resolved_by": step.resolution.map { .string($0.by) } ?? .null,
                    "resolved_note": step.resolution.map { .string($0.note) } ?? .null,
                    "resolved_at": step.resolution.map { .double($0.at.timeIntervalSince1970) } ?? .null,
                    "wait": StepRow.text(of: step.wait).map(JSONValue.string) ?? .null,
                ]
                if let (token, attempt) = StepRow.callbackToken(of: step) {
                    record["callback_token"] = .string(token)
                    record["callback_attempt"] = .int(Int64(attempt))
                }
                if names { record["name"] = .string(step.name) }
                // An item of a forEach step: its row is inserted by the transition that works the items out.
                if step.element != nil { record["item"] = .string(step.name) }
                return .object(record)
            }
        )
    }

    /// Events as `jsonb_to_recordset` reads them, numbered so they are inserted in order.
    static func eventsJSON(_ events: [RunEvent]) -> JSONValue {
        JSONValue.array(
            events.enumerated().map { index, event in
                [
                    "n": .int(Int64(index)), "at": .double(event.at.timeIntervalSince1970), "kind": .string(event.kind.rawValue),
                    "step": event.step.map(JSONValue.string) ?? .null, "phase": event.phase.map { .string($0.rawValue) } ?? .null,
                    "attempt": event.attempt.map { .int(Int64($0)) } ?? .null, "message": .string(event.message),
                    "data": .string(event.data.jsonText),
                ]
            }
        )
    }

    /// The attempt's position, phase and number ($15–$17).
    static func append(_ key: AttemptKey, to bindings: inout PostgresBindings) {
        bindings.append(key.step)
        bindings.append(key.phase.rawValue)
        bindings.append(key.number)
    }

    /// $1–$14, the same in every shape.
    struct Common: Sendable {
        var runID: String
        var owner: String
        var state: RunState
        var at: Double
        var steps: JSONValue
        var events: JSONValue
        var epoch: Int64?

        init(_ transition: SagaMachine.Transition, runID: String, owner: String, epoch: Int64?, at: Date) {
            self.runID = runID
            self.owner = owner
            self.epoch = epoch
            self.state = transition.state
            self.at = at.timeIntervalSince1970
            steps = TransitionStatements.stepsJSON(transition.state, at: transition.changedSteps ?? Array(transition.state.steps.indices))
            events = TransitionStatements.eventsJSON(transition.events)
        }

        func bindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 21)
            bindings.append(runID)
            bindings.append(owner)
            bindings.append(state.status.rawValue)
            for text in [
                state.failure?.step, state.failure?.reason, state.compensationFailure?.step, state.compensationFailure?.reason,
                state.stuck?.step, state.stuck?.reason,
            ] {
                Self.append(text, to: &bindings)
            }
            Self.append(state.deadlineAt?.timeIntervalSince1970, to: &bindings)
            bindings.append(at)
            bindings.append(steps.jsonText)
            bindings.append(events.jsonText)
            Self.append(epoch, to: &bindings)
            return bindings
        }

        /// A typed NULL: the parameter's type stays the same whether or not this call has a value.
        static func append<T: PostgresNonThrowingEncodable>(_ value: T?, to bindings: inout PostgresBindings) {
            if let value { bindings.append(value) } else { bindings.appendNull() }
        }
    }

    static let types: [PostgresDataType] = [.text, .text, .text, .text, .text, .text, .text, .text, .text, .float8, .float8, .text, .text, .int8]

    struct Only: TransitionStatement {
        static let name = "skald_transition"
        static let sql = TransitionStatements.sql(attempt: nil)
        static let bindingDataTypes = types
        var common: Common
        func makeBindings() -> PostgresBindings { common.bindings() }
    }

    struct Started: TransitionStatement {
        static let name = "skald_transition_attempt_started"
        static let sql = TransitionStatements.sql(
            attempt: """
                a AS (
                    INSERT INTO attempt (run_id, position, phase, number, step_name, started_at, node)
                    SELECT $1, $15, $16, $17, $18, $11, $2
                    WHERE EXISTS (SELECT 1 FROM r)
                    RETURNING 1)
                """)
        static let bindingDataTypes = types + [.int8, .text, .int8, .text]
        var common: Common
        var key: AttemptKey
        func makeBindings() -> PostgresBindings {
            var bindings = common.bindings()
            TransitionStatements.append(key, to: &bindings)
            bindings.append(key.stepName)
            return bindings
        }
    }

    struct Resent: TransitionStatement {
        static let name = "skald_transition_attempt_resent"
        static let sql = TransitionStatements.sql(
            attempt: """
                a AS (
                    UPDATE attempt SET sends = sends + 1, started_at = $11, node = $2
                    WHERE run_id = $1 AND position = $15 AND phase = $16 AND number = $17 AND finished_at IS NULL AND EXISTS (SELECT 1 FROM r)
                    RETURNING 1)
                """)
        static let bindingDataTypes = types + [.int8, .text, .int8]
        var common: Common
        var key: AttemptKey
        func makeBindings() -> PostgresBindings {
            var bindings = common.bindings()
            TransitionStatements.append(key, to: &bindings)
            return bindings
        }
    }

    struct Finished: TransitionStatement {
        static let name = "skald_transition_attempt_finished"
        static let sql = TransitionStatements.sql(
            attempt: """
                a AS (
                    UPDATE attempt SET finished_at = $11, succeeded = $18, http_status = $19, error = $20, duration_ms = $21
                    WHERE run_id = $1 AND position = $15 AND phase = $16 AND number = $17 AND finished_at IS NULL AND EXISTS (SELECT 1 FROM r)
                    RETURNING 1)
                """)
        static let bindingDataTypes = types + [.int8, .text, .int8, .bool, .int8, .text, .int8]
        var common: Common
        var record: AttemptRecord
        func makeBindings() -> PostgresBindings {
            var bindings = common.bindings()
            TransitionStatements.append(record.key, to: &bindings)
            Common.append(record.succeeded, to: &bindings)
            Common.append(record.httpStatus, to: &bindings)
            Common.append(record.error, to: &bindings)
            Common.append(record.durationMs, to: &bindings)
            return bindings
        }
    }
}

/// Each transition statement answers one row: how many step and event rows it wrote.
protocol TransitionStatement: PostgresPreparedStatement where Row == Int {}

extension TransitionStatement {
    func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
}

import Foundation
import SkaldCore

// The rows both stores hold, with the same columns and values (times in seconds since 1970, JSON as text), and
// their one mapping to Skald's values. Each store decodes its rows into these (GRDB as `FetchableRecord`, PostgreSQL
// through `PostgresRowDecoder`); a value no version of Skald writes fails here, once, as `StoreError.unreadableRow`.

/// A row of `run` (with `current_step` when a listing asks for it).
public struct RunRow: Decodable, Sendable {
    public var id: String
    public var definitionHash: String
    public var sagaName: String
    public var sagaVersion: Int
    public var status: String
    public var input: String
    public var failureStep: String?
    public var failureReason: String?
    public var compensationFailureStep: String?
    public var compensationFailureReason: String?
    public var stuckStep: String?
    public var stuckReason: String?
    public var deadlineAt: Double?
    public var createdAt: Double
    public var updatedAt: Double
    public var idempotencyKey: String?
    public var traceParent: String?
    public var traceState: String?
    /// PostgreSQL only: which claim of the run this is.
    public var claimEpoch: Int64?
    /// Listings only: the first step under way.
    public var currentStep: String?

    enum CodingKeys: String, CodingKey {
        case id, status, input
        case definitionHash = "definition_hash", sagaName = "saga_name", sagaVersion = "saga_version"
        case failureStep = "failure_step", failureReason = "failure_reason"
        case compensationFailureStep = "compensation_failure_step", compensationFailureReason = "compensation_failure_reason"
        case stuckStep = "stuck_step", stuckReason = "stuck_reason", deadlineAt = "deadline_at"
        case createdAt = "created_at", updatedAt = "updated_at", idempotencyKey = "idempotency_key"
        case traceParent = "trace_parent", traceState = "trace_state", claimEpoch = "claim_epoch", currentStep = "current_step"
    }

    /// The run with its steps (in position order) and its definition's document.
    public func storedRun(document: JSONValue, steps: [StepRow]) throws -> StoredRun {
        var state = RunState(id: id, stepNames: steps.map(\.name))
        state.status = try Self.decode(RunStatus.self, status)
        state.failure = Self.failure(failureStep, failureReason)
        state.compensationFailure = Self.failure(compensationFailureStep, compensationFailureReason)
        state.stuck = Self.failure(stuckStep, stuckReason)
        state.deadlineAt = deadlineAt.map(Date.init(timeIntervalSince1970:))
        state.steps = try steps.map { try $0.state() }
        state.linkElements()
        return StoredRun(
            id: id, sagaName: sagaName, sagaVersion: sagaVersion, definitionHash: definitionHash, definitionDocument: document,
            input: try Self.json(input, "the input of run \(id)"), createdAt: Date(timeIntervalSince1970: createdAt),
            updatedAt: Date(timeIntervalSince1970: updatedAt), state: state, idempotencyKey: idempotencyKey,
            trace: traceParent.map { RunTrace(parent: $0, state: traceState) }, claimEpoch: claimEpoch)
    }

    /// The run as a listing shows it.
    public func summary() throws -> RunSummary {
        RunSummary(
            id: id, sagaName: sagaName, sagaVersion: sagaVersion, status: try Self.decode(RunStatus.self, status),
            createdAt: Date(timeIntervalSince1970: createdAt), updatedAt: Date(timeIntervalSince1970: updatedAt),
            failure: Self.failure(failureStep, failureReason),
            compensationFailure: Self.failure(compensationFailureStep, compensationFailureReason), stuck: Self.failure(stuckStep, stuckReason),
            idempotencyKey: idempotencyKey, currentStep: currentStep)
    }

    /// A failure is stored when its reason is; its step is NULL when no step failed (a cancel, the deadline).
    static func failure(_ step: String?, _ reason: String?) -> RunFailure? {
        reason.map { RunFailure(step: step, reason: $0) }
    }

    /// A stored enumeration's value, or `StoreError.unreadableRow` naming it.
    public static func decode<T: RawRepresentable>(_ type: T.Type, _ raw: String) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: raw) else { throw StoreError.unknownValue(raw, of: T.self) }
        return value
    }

    /// Stored JSON text, or `StoreError.unreadableRow` naming what it is.
    public static func json(_ text: String, _ what: String) throws -> JSONValue {
        do {
            return try JSONParser.parse(text)
        } catch {
            throw StoreError(.unreadableRow, "\(what) in the database is not JSON: \(error)")
        }
    }
}

/// A row of `step`.
public struct StepRow: Decodable, Sendable {
    public var name: String
    public var status: String
    public var attempts: Int
    public var compensationAttempts: Int
    public var compensationAttemptsBase: Int
    public var attemptsBase: Int
    public var firstAttemptAt: Double?
    public var compensationFirstAttemptAt: Double?
    public var dueAt: Double?
    public var responseStatus: Int?
    public var responseBody: String?
    public var lastError: String?
    public var outcomeUnknown: Bool
    public var resolvedBy: String?
    public var resolvedNote: String?
    public var resolvedAt: Double?
    /// What a waiting step waits for, as JSON text (`StepRow.text(of:)`).
    public var wait: String?
    /// Set when rows of several runs are read at once.
    public var runID: String?

    enum CodingKeys: String, CodingKey {
        case name, status, attempts
        case compensationAttempts = "compensation_attempts", compensationAttemptsBase = "compensation_attempts_base"
        case attemptsBase = "attempts_base", firstAttemptAt = "first_attempt_at", compensationFirstAttemptAt = "compensation_first_attempt_at"
        case dueAt = "due_at", responseStatus = "response_status", responseBody = "response_body", lastError = "last_error"
        case outcomeUnknown = "outcome_unknown", resolvedBy = "resolved_by", resolvedNote = "resolved_note", resolvedAt = "resolved_at"
        case wait, runID = "run_id"
    }

    public func state() throws -> StepState {
        var step = StepState(name: name)
        step.status = try RunRow.decode(StepStatus.self, status)
        step.attempts = attempts
        step.compensationAttempts = compensationAttempts
        step.compensationAttemptsBase = compensationAttemptsBase
        step.attemptsBase = attemptsBase
        step.firstAttemptAt = firstAttemptAt.map(Date.init(timeIntervalSince1970:))
        step.compensationFirstAttemptAt = compensationFirstAttemptAt.map(Date.init(timeIntervalSince1970:))
        step.dueAt = dueAt.map(Date.init(timeIntervalSince1970:))
        if let responseStatus {
            step.response = StepResponse(status: responseStatus, body: try RunRow.json(responseBody ?? "null", "the response of step \(name)"))
        }
        step.lastError = lastError
        step.outcomeUnknown = outcomeUnknown
        if let resolvedAt {
            step.resolution = StepResolution(by: resolvedBy ?? "", note: resolvedNote ?? "", at: Date(timeIntervalSince1970: resolvedAt))
        }
        if let wait {
            step.wait = try Self.wait(from: RunRow.json(wait, "the wait of step \(name)"), step: name)
        }
        return step
    }

    /// A step's wait as the `wait` column holds it: `{"kind", "since", "until", "prompt"}`, times in seconds since 1970.
    public static func text(of wait: StepWait?) -> String? {
        guard let wait else { return nil }
        var members: [String: JSONValue] = [
            "kind": .string(wait.kind.rawValue), "since": .double(wait.since.timeIntervalSince1970), "until": .double(wait.until.timeIntervalSince1970),
        ]
        if let prompt = wait.prompt { members["prompt"] = .string(prompt) }
        if let token = wait.token { members["token"] = .string(token) }
        if let attempt = wait.attempt { members["attempt"] = .int(Int64(attempt)) }
        if let heartbeatAt = wait.heartbeatAt { members["heartbeatAt"] = .double(heartbeatAt.timeIntervalSince1970) }
        if let output = wait.output { members["output"] = output }
        return JSONValue.object(members).jsonText
    }

    static func wait(from value: JSONValue, step: String) throws -> StepWait {
        guard let kind = value["kind"]?.stringValue, let since = value["since"]?.doubleValue, let until = value["until"]?.doubleValue else {
            throw StoreError(.unreadableRow, "the wait of step \(step) in the database lacks its kind, since or until: \(value.jsonText)")
        }
        return StepWait(
            kind: try RunRow.decode(WaitKind.self, kind), since: Date(timeIntervalSince1970: since), until: Date(timeIntervalSince1970: until),
            prompt: value["prompt"]?.stringValue, token: value["token"]?.stringValue, attempt: value["attempt"]?.intValue.map { Int($0) },
            heartbeatAt: value["heartbeatAt"]?.doubleValue.map(Date.init(timeIntervalSince1970:)), output: value["output"])
    }

    /// The callback token a transition registers for this step: its current attempt's, when it has one (stored with
    /// the attempt, before the request leaves, so that a callback is recognised even before the answer comes).
    public static func callbackToken(of step: StepState) -> (token: String, attempt: Int)? {
        guard let wait = step.wait, wait.kind == .callback, let token = wait.token, let attempt = wait.attempt else { return nil }
        return (token, attempt)
    }
}

/// A row of `event`.
public struct EventRow: Decodable, Sendable {
    public var id: Int64
    public var at: Double
    public var kind: String
    public var step: String?
    public var phase: String?
    public var attempt: Int?
    public var message: String
    public var data: String

    public func event() throws -> StoredEvent {
        StoredEvent(
            sequence: id,
            event: RunEvent(
                at: Date(timeIntervalSince1970: at), kind: try RunRow.decode(RunEvent.Kind.self, kind), step: step,
                phase: try phase.map { try RunRow.decode(Phase.self, $0) }, attempt: attempt, message: message,
                data: try RunRow.json(data, "the data of event \(id)")))
    }
}

/// A row of `attempt` (`node` is PostgreSQL's only).
public struct AttemptRow: Decodable, Sendable {
    public var position: Int
    public var stepName: String
    public var phase: String
    public var number: Int
    public var startedAt: Double
    public var sends: Int
    public var finishedAt: Double?
    public var succeeded: Bool?
    public var httpStatus: Int?
    public var error: String?
    public var durationMs: Int?
    public var node: String?

    enum CodingKeys: String, CodingKey {
        case position, phase, number, sends, succeeded, error, node
        case stepName = "step_name", startedAt = "started_at", finishedAt = "finished_at", httpStatus = "http_status", durationMs = "duration_ms"
    }

    public func record(runID: String) throws -> AttemptRecord {
        AttemptRecord(
            key: AttemptKey(runID: runID, step: position, stepName: stepName, phase: try RunRow.decode(Phase.self, phase), number: number),
            startedAt: Date(timeIntervalSince1970: startedAt), sends: sends, finishedAt: finishedAt.map(Date.init(timeIntervalSince1970:)),
            succeeded: succeeded, httpStatus: httpStatus, error: error, durationMs: durationMs, node: node)
    }
}

/// A row of `definition`.
public struct DefinitionRow: Decodable, Sendable {
    public var hash: String
    public var name: String
    public var version: Int
    public var document: String
    public var createdAt: Double

    enum CodingKeys: String, CodingKey {
        case hash, name, version, document
        case createdAt = "created_at"
    }

    public func definition() throws -> StoredDefinition {
        StoredDefinition(
            hash: hash, name: name, version: version, document: try RunRow.json(document, "definition \(name) v\(version)"),
            createdAt: Date(timeIntervalSince1970: createdAt))
    }
}

/// The conditions of a run listing, as SQL with `?` for each value (a store numbers them as it needs), in one
/// order for both stores.
public struct RunFilter: Sendable {
    public enum Value: Sendable, Equatable {
        case text(String)
        case real(Double)
    }

    public var conditions: [(sql: String, value: Value)] = []

    public init(_ query: RunQuery) {
        if let status = query.status { conditions.append(("status = ?", .text(status.rawValue))) }
        if let saga = query.saga { conditions.append(("saga_name = ?", .text(saga))) }
        if let cursor = query.cursor { conditions.append((query.waiting == nil ? "id < ?" : "id > ?", .text(cursor))) }
        if let after = query.createdAfter { conditions.append(("created_at >= ?", .real(after.timeIntervalSince1970))) }
        if let before = query.createdBefore { conditions.append(("created_at < ?", .real(before.timeIntervalSince1970))) }
        if let key = query.idempotencyKey { conditions.append(("idempotency_key = ?", .text(key))) }
        if let kind = query.waiting {
            // The wait's JSON text is canonical (`StepRow.text(of:)`), so its kind is matched as text, alike in both stores.
            conditions.append(
                ("status = 'running' AND EXISTS (SELECT 1 FROM step WHERE step.run_id = run.id AND step.status = 'waiting' AND step.wait LIKE ?)",
                    .text("%\"kind\":\"\(kind.rawValue)\"%")))
            oldestFirst = true
        }
    }

    /// Runs waiting for a person are listed oldest first (the one waiting longest comes first); others newest first.
    public var oldestFirst = false

    /// The listing's statement, newest first, one row more than `limit` (to know whether a next page exists);
    /// `placeholder(n)` spells the n-th parameter (1-based), the limit's last.
    public func sql(placeholder: (Int) -> String) -> String {
        let clauses = conditions.enumerated().map { index, condition in
            condition.sql.replacingOccurrences(of: "?", with: placeholder(index + 1))
        }
        return """
            SELECT run.*, (SELECT name FROM step WHERE step.run_id = run.id AND step.status IN ('running', 'waiting', 'compensating')
                ORDER BY position LIMIT 1) AS current_step
            FROM run \(clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")) ORDER BY id \(oldestFirst ? "ASC" : "DESC") LIMIT \(placeholder(conditions.count + 1))
            """
    }

    /// A page of the listing's rows (at most `limit` + 1 of them).
    public static func page(_ rows: [RunRow], limit: Int) throws -> RunPage {
        let runs = try rows.prefix(limit).map { try $0.summary() }
        return RunPage(runs: Array(runs), nextCursor: rows.count > limit ? runs.last?.id : nil)
    }
}

/// A row of `callback`: one token (one attempt of a callback step), and what its participant posted to it.
public struct CallbackRow: Decodable, Sendable {
    public var token: String
    public var runID: String
    public var position: Int
    public var attempt: Int
    /// `succeeded` or `failed` once the participant completed the step; NULL before.
    public var status: String?
    public var output: String?
    public var error: String?
    public var receivedAt: Double?
    public var heartbeatAt: Double?
    /// Read with the row when a callback comes: the step's status and attempts now.
    public var stepStatus: String?
    public var stepAttempts: Int?

    public init(token: String, runID: String, position: Int, attempt: Int) {
        self.token = token
        self.runID = runID
        self.position = position
        self.attempt = attempt
    }

    enum CodingKeys: String, CodingKey {
        case token, position, attempt, status, output, error
        case runID = "run_id", receivedAt = "received_at", heartbeatAt = "heartbeat_at", stepStatus = "step_status", stepAttempts = "step_attempts"
    }

    /// What the row holds, as the engine reads it.
    public func stored() throws -> StoredCallback {
        var final: CallbackSignal?
        switch status {
        case "succeeded"?: final = .succeeded(output: try RunRow.json(output ?? "null", "the output of a callback of run \(runID)"))
        case "failed"?: final = .failed(error: error ?? "")
        case nil: final = nil
        case let other?: throw StoreError.unknownValue(other, of: CallbackSignal.self)
        }
        return StoredCallback(
            runID: runID, step: position, attempt: attempt, final: final, receivedAt: receivedAt.map(Date.init(timeIntervalSince1970:)),
            heartbeatAt: heartbeatAt.map(Date.init(timeIntervalSince1970:)), token: token)
    }

    /// What becomes of `signal` posted to this token at `at`, and what to store for it: the one rule both stores apply
    /// inside the transaction that read the row.
    public func receive(_ signal: CallbackSignal, at: Date) throws -> (receipt: CallbackReceipt, update: CallbackUpdate?) {
        let stored = try stored()
        if let final = stored.final {
            // A repeat of what is stored is answered as it was; anything else contradicts it.
            if final == signal { return (.repeated(stored), nil) }
            if case .heartbeat = signal { return (.gone("the step was already completed by an earlier callback"), nil) }
            return (.conflict("a different callback was already stored for this step: \(Self.describe(final))"), nil)
        }
        // Still waiting for this attempt: in flight, waiting for the callback, or due to be retried after its
        // answer was lost (the callback then says how it ended).
        let live = stepAttempts == attempt && (stepStatus == StepStatus.running.rawValue || stepStatus == StepStatus.waiting.rawValue)
        guard live else {
            return (
                .gone(
                    stepAttempts.map { $0 > attempt } == true
                        ? "this token is for attempt \(attempt), and the step has since been sent again with a new one"
                        : "the step no longer waits for a callback (it is \(stepStatus ?? "gone"): the run was cancelled, the wait timed out, or an operator settled it)"),
                nil
            )
        }
        switch signal {
        case .heartbeat:
            var updated = stored
            updated.heartbeatAt = at
            return (.stored(updated), .heartbeat(at: at))
        case .succeeded, .failed:
            var updated = stored
            updated.final = signal
            updated.receivedAt = at
            return (.stored(updated), .final(signal, at: at))
        }
    }

    static func describe(_ signal: CallbackSignal) -> String {
        switch signal {
        case .succeeded(let output): "succeeded with output \(output.jsonText)"
        case .failed(let error): "failed (\(error))"
        case .heartbeat: "heartbeat"
        }
    }
}

/// What a store writes for a callback it accepted.
public enum CallbackUpdate: Sendable {
    case final(CallbackSignal, at: Date)
    case heartbeat(at: Date)

    /// The `callback` columns to set: status, output, error, received_at, heartbeat_at (nil: leave as is).
    public var columns: (status: String?, output: String?, error: String?, receivedAt: Double?, heartbeatAt: Double?) {
        switch self {
        case .heartbeat(let at): (nil, nil, nil, nil, at.timeIntervalSince1970)
        case .final(.succeeded(let output), let at): ("succeeded", output.jsonText, nil, at.timeIntervalSince1970, nil)
        case .final(.failed(let error), let at): ("failed", nil, error, at.timeIntervalSince1970, nil)
        case .final(.heartbeat, let at): (nil, nil, nil, nil, at.timeIntervalSince1970)
        }
    }
}

extension StepRow {
    /// A condition on `run` (both stores): a final callback is stored for the current attempt of one of its steps that
    /// still waits for it, so the callback has not been applied yet.
    public static let pendingCallbackSQL = """
        EXISTS (SELECT 1 FROM callback JOIN step ON step.run_id = callback.run_id AND step.position = callback.position
            WHERE callback.run_id = run.id AND callback.status IS NOT NULL AND step.attempts = callback.attempt
                AND step.status IN ('running', 'waiting'))
        """

    /// Counts the waiting steps by what they wait for: the statement both stores run (a wait's JSON text is canonical,
    /// so its kind is matched as text), one row (kind, count) per kind with waiting steps.
    public static let waitingCountsSQL = """
        SELECT CASE WHEN wait LIKE '%"kind":"callback"%' THEN 'callback' WHEN wait LIKE '%"kind":"approval"%' THEN 'approval'
            ELSE 'sleep' END AS kind, count(*) AS n
        FROM step WHERE status = 'waiting' GROUP BY 1
        """
}

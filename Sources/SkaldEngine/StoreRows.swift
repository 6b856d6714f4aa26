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
        return JSONValue.object(members).jsonText
    }

    static func wait(from value: JSONValue, step: String) throws -> StepWait {
        guard let kind = value["kind"]?.stringValue, let since = value["since"]?.doubleValue, let until = value["until"]?.doubleValue else {
            throw StoreError(.unreadableRow, "the wait of step \(step) in the database lacks its kind, since or until: \(value.jsonText)")
        }
        return StepWait(
            kind: try RunRow.decode(WaitKind.self, kind), since: Date(timeIntervalSince1970: since), until: Date(timeIntervalSince1970: until),
            prompt: value["prompt"]?.stringValue)
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

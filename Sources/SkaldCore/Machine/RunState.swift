import Foundation

public enum Phase: String, Sendable, Hashable, Codable, CaseIterable {
    case forward
    case compensate
}

public enum RunStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case running
    case compensating
    case completed
    case compensated
    case compensationFailed = "compensation_failed"
    /// Past the pivot a step failed for good: the saga cannot turn back, so a person must fix the step and resume.
    case stuck
    /// An operator stopped the run without undoing anything more: the business settled it by hand.
    case abandoned

    public var isTerminal: Bool {
        switch self {
        case .running, .compensating, .stuck: false
        case .completed, .compensated, .compensationFailed, .abandoned: true
        }
    }

    /// Waiting for a person (compensation_failed or stuck).
    public var needsOperator: Bool { self == .compensationFailed || self == .stuck }
}

public enum StepStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Not started.
    case pending
    /// The forward call is scheduled or in flight.
    case running
    /// The step waits for something outside Skald: a person's decision, or a time (`StepState.wait` says which).
    /// Its `dueAt` is when the wait ends on its own (the timeout, the sleep's end). Not an attempt: nothing is in
    /// flight, and the run costs a row, not a task, while it waits.
    case waiting
    case succeeded
    /// The forward call failed for good with an answer: the participant refused it.
    case failed
    /// The forward call failed for good and at least one attempt got no answer (a timeout, or the connection broke
    /// after the request was sent): the participant may have applied it. Compensated like a succeeded step,
    /// unless the step says `compensateUnknown: false`.
    case outcomeUnknown = "outcome_unknown"
    /// The compensation is scheduled or in flight.
    case compensating
    case compensated
    case compensationFailed = "compensation_failed"
    /// Succeeded and later passed over while compensating, because it declares no compensation.
    case compensationSkipped = "compensation_skipped"
    /// Failed for good after the pivot (or the pivot with its outcome unknown), then done by hand: an operator
    /// recorded that the step's work was done outside Skald. Later steps treat it as succeeded.
    case resolved
    /// The compensation failed for good, then was done by hand: an operator recorded that the step was undone
    /// outside Skald. The compensation walk treats it as compensated.
    case compensationResolved = "compensation_resolved"
    /// Its `when` was false when it came due: it never ran, is never compensated, and the steps after it go on.
    case skipped

    public var phase: Phase? {
        switch self {
        case .running: .forward
        case .compensating: .compensate
        default: nil
        }
    }

    /// The forward work is done: by the participant (`succeeded`) or by hand (`resolved`).
    public var isDone: Bool { self == .succeeded || self == .resolved }

    /// The steps that depend on it may start: it is done, or it was skipped.
    public var letsDependentsStart: Bool { isDone || self == .skipped }

    /// The step was undone: by its compensation (`compensated`) or by hand (`compensation_resolved`).
    public var isUndone: Bool { self == .compensated || self == .compensationResolved }
}

/// Who recorded that a step (or its compensation) was done by hand, when, and what they did.
public struct StepResolution: Sendable, Hashable {
    public var by: String
    public var note: String
    public var at: Date

    public init(by: String, note: String, at: Date) {
        self.by = by
        self.note = note
        self.at = at
    }
}

/// What a waiting step waits for, since when, and what a person is asked; for a callback step, the token of its
/// current attempt and, once it came, the callback's output.
public struct StepWait: Sendable, Hashable {
    public var kind: WaitKind
    public var since: Date
    /// When the wait ends on its own: a sleep's end, an approval's or a callback's timeout.
    public var until: Date
    /// An approval's question, rendered when the step began.
    public var prompt: String?
    /// A callback step: the token of the attempt the callback completes (a new one for every attempt).
    public var token: String?
    /// A callback step: the attempt `token` is for.
    public var attempt: Int?
    /// A callback step: the last heartbeat the participant posted.
    public var heartbeatAt: Date?
    /// A callback step: what the participant posted with `"status": "succeeded"`.
    public var output: JSONValue?

    public init(
        kind: WaitKind, since: Date, until: Date, prompt: String? = nil, token: String? = nil, attempt: Int? = nil, heartbeatAt: Date? = nil,
        output: JSONValue? = nil
    ) {
        self.kind = kind
        self.since = since
        self.until = until
        self.prompt = prompt
        self.token = token
        self.attempt = attempt
        self.heartbeatAt = heartbeatAt
        self.output = output
    }
}

/// What a participant posted to a callback step's URL.
public enum CallbackSignal: Sendable, Hashable {
    /// The work is done; later steps read `output` as `{{steps.NAME.callback.output…}}`.
    case succeeded(output: JSONValue)
    /// The participant refused the work: nothing was applied.
    case failed(error: String)
    /// Still working: pushes the heartbeat deadline forward.
    case heartbeat
}

/// The `Idempotency-Key` Skald sends with every attempt of one call: the same across retries and restarts, so a
/// participant can deduplicate, and known before the call is sent, so a compensation can name the action it undoes.
public enum IdempotencyKey {
    public static func of(runID: String, step: String, phase: Phase) -> String { "\(runID):\(step):\(phase.rawValue)" }
}

/// What a participant answered to a successful call (or to a failed one, for the record).
public struct StepResponse: Sendable, Hashable {
    public var status: Int
    /// The body: parsed JSON, or the text as a JSON string when it is not JSON; null when empty.
    public var body: JSONValue

    public init(status: Int, body: JSONValue) {
        self.status = status
        self.body = body
    }
}

/// One item of a `forEach` step: a step of the run of its own (named `STEP[3]`), with its own attempts, answer and
/// compensation, after the saga's steps.
public struct StepElement: Sendable, Hashable {
    /// The `forEach` step it belongs to.
    public var step: String
    /// Its position among the step's items, from 0.
    public var index: Int

    /// `reserve-item[3]`: the name of item 3 of step reserve-item (step names have no brackets).
    public static func name(of step: String, index: Int) -> String { "\(step)[\(index)]" }

    public init(step: String, index: Int) {
        self.step = step
        self.index = index
    }

    /// The item a step name names, or nil for the name of a saga's step.
    public init?(name: String) {
        guard name.last == "]", let open = name.lastIndex(of: "["), open > name.startIndex,
            let index = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]), index >= 0
        else { return nil }
        self.step = String(name[..<open])
        self.index = index
    }
}

public struct StepState: Sendable, Hashable {
    public var name: String
    /// For an item of a `forEach` step (its name is `STEP[i]`): which step and which item.
    public let element: StepElement?
    /// For a `forEach` step that has run over its items: where they are in the run's steps. Its own status then
    /// sums up theirs, and nothing is sent for the step itself. Not stored: worked out from the steps' names.
    public var elements: Range<Int>?
    public var status: StepStatus
    /// Forward attempts started so far.
    public var attempts: Int
    /// Compensation attempts started so far.
    public var compensationAttempts: Int
    /// Compensation attempts made before an operator's last retry: the retry policy counts from here.
    public var compensationAttemptsBase: Int
    /// Forward attempts made before an operator resumed a stuck run.
    public var attemptsBase: Int
    /// When the first attempt of the current retry budget started, per phase (for `maxElapsed`).
    public var firstAttemptAt: Date?
    public var compensationFirstAttemptAt: Date?
    /// When the next attempt of the current phase may start; nil when no attempt is waiting
    /// (none is needed, or one is in flight).
    public var dueAt: Date?
    /// The forward response, once the step succeeded.
    public var response: StepResponse?
    /// Why the last attempt of the current phase failed.
    public var lastError: String?
    /// A forward attempt ended without an answer (timeout, or the connection broke after sending) and no later
    /// attempt succeeded: the participant may have applied the request.
    public var outcomeUnknown: Bool = false
    /// A person's decision on the step: an operator resolved it (status `resolved`) or its compensation
    /// (`compensation_resolved`), or approved or rejected it (an approval step).
    public var resolution: StepResolution?
    /// What the step waits for, while it is `waiting` (and kept once the wait ended, for the record).
    public var wait: StepWait?

    public init(name: String) {
        self.name = name
        self.element = StepElement(name: name)
        self.status = .pending
        self.attempts = 0
        self.compensationAttempts = 0
        self.compensationAttemptsBase = 0
        self.attemptsBase = 0
    }

    /// Failed for good going forward, with an answer or without.
    public var failedForward: Bool { status == .failed || status == .outcomeUnknown }

    /// An attempt has been recorded as started and its outcome is not recorded yet.
    /// (A `forEach` step whose items are under way has none of its own.)
    public var isInFlight: Bool { status.phase != nil && dueAt == nil && elements == nil }

    public func attempts(in phase: Phase) -> Int {
        phase == .forward ? attempts : compensationAttempts
    }

    /// Attempts counted against the retry policy: those since the last operator retry or resume.
    public func countedAttempts(in phase: Phase) -> Int {
        phase == .forward ? attempts - attemptsBase : compensationAttempts - compensationAttemptsBase
    }
}

/// Why a run stopped going forward, or why its compensation stopped.
public struct RunFailure: Sendable, Hashable {
    /// The step that failed; nil when no step did (an operator's cancel, the saga deadline).
    public var step: String?
    public var reason: String

    public init(step: String?, reason: String) {
        self.step = step
        self.reason = reason
    }

    /// How the reason of a run stuck at a pivot whose outcome is unknown begins (the CLI reads it from the API).
    public static let outcomeUnknownPrefix = "outcome unknown: "

    /// The run is stuck because its pivot's outcome is unknown, not because a step after the pivot failed.
    public var isOutcomeUnknown: Bool { reason.hasPrefix(Self.outcomeUnknownPrefix) }

    /// "charge-card failed (HTTP 402 …)", or the reason alone when no step failed.
    public var summary: String {
        step.map { "\($0) failed (\(reason))" } ?? reason
    }
}

/// Everything the state machine needs to decide a run's next move.
public struct RunState: Sendable, Hashable {
    public var id: String
    public var status: RunStatus
    public var steps: [StepState]
    /// The forward step whose failure started compensation.
    public var failure: RunFailure?
    /// The compensation that failed for good.
    public var compensationFailure: RunFailure?
    /// The step past the pivot that failed for good, while the run is stuck.
    public var stuck: RunFailure?
    /// When the saga's deadline passes; no forward attempt starts after it.
    public var deadlineAt: Date?

    public init(id: String, stepNames: [String]) {
        self.id = id
        self.status = .running
        self.steps = stepNames.map(StepState.init(name:))
    }

    /// A run read back: `steps` in position order, the items of `forEach` steps after the saga's steps. Each
    /// `forEach` step that ran over its items learns where they are.
    public init(id: String, steps: [StepState]) {
        self.id = id
        self.status = .running
        self.steps = steps
        linkElements()
    }

    /// Sets `elements` of each step whose items follow the saga's steps (in one run of positions).
    public mutating func linkElements() {
        var ranges: [String: Range<Int>] = [:]
        for (position, step) in steps.enumerated() {
            guard let element = step.element else { continue }
            if let range = ranges[element.step], range.upperBound == position {
                ranges[element.step] = range.lowerBound..<(position + 1)
            } else if ranges[element.step] == nil {
                ranges[element.step] = position..<(position + 1)
            }
        }
        guard !ranges.isEmpty else { return }
        for position in steps.indices where steps[position].element == nil {
            if let range = ranges[steps[position].name] { steps[position].elements = range }
        }
    }

    /// The earliest time an attempt is due, if any is waiting.
    public var nextDueAt: Date? {
        steps.compactMap(\.dueAt).min()
    }

    /// Steps whose next attempt may start at `now`.
    public func dueSteps(at now: Date) -> [Int] {
        steps.indices.filter { steps[$0].dueAt.map { $0 <= now } ?? false }
    }

    public var inFlightSteps: [Int] {
        steps.indices.filter { steps[$0].isInFlight }
    }

    /// The steps waiting for a person or a time.
    public var waitingSteps: [Int] {
        steps.indices.filter { steps[$0].status == .waiting }
    }
}

extension RunState {
    /// The answers of each `forEach` step that ran over its items, by step name, as `{{steps.NAME.responses}}` reads
    /// them: one `{"status", "body"}` per item, null for an item with no answer.
    public func itemResponses() -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for step in steps {
            guard let range = step.elements else { continue }
            out[step.name] = .array(
                steps[range].map { item in item.response.map { ["status": .int(Int64($0.status)), "body": $0.body] } ?? .null })
        }
        return out
    }
}

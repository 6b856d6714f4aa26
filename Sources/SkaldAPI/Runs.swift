import Foundation
import SkaldCore

// The run shapes of the API: `GET /v1/runs`, `GET /v1/runs/{id}`, the operator actions' answers and the events.
// Statuses are text, not `RunStatus`, so that a CLI reads a newer server's runs (`runStatus` is the known one).

/// Why a run failed, which compensation failed, or where it is stuck.
public struct FailureView: APIObject, Equatable {
    @Nullable public var step: String?
    public var reason: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case step, reason }

    public init(step: String?, reason: String) {
        self.step = step
        self.reason = reason
    }
}

/// Where a run's routes are.
public struct LinksView: APIObject, Equatable {
    /// `self` in the JSON.
    public var run: String
    public var events: String
    public var cancel: String
    public var retry: String
    public var resolve: String
    public var abandon: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case run = "self", events, cancel, retry, resolve, abandon }

    public init(runID: String) {
        let base = "/v1/runs/\(runID)"
        run = base
        (events, cancel, retry, resolve, abandon) = (base + "/events", base + "/cancel", base + "/retry", base + "/resolve", base + "/abandon")
    }
}

/// One run in a list.
public struct RunSummaryView: APIObject {
    public var id: String
    public var saga: String
    public var version: Int
    public var status: String
    public var createdAt: Date
    public var updatedAt: Date
    @Nullable public var failure: FailureView?
    @Nullable public var compensationFailure: FailureView?
    @Nullable public var stuck: FailureView?
    @Nullable public var idempotencyKey: String?
    /// The step running or compensating now, if any.
    @Nullable public var currentStep: String?
    public var links: LinksView

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case id, saga, version, status, createdAt, updatedAt, failure, compensationFailure, stuck, idempotencyKey, currentStep, links
    }

    public init(
        id: String, saga: String, version: Int, status: String, createdAt: Date, updatedAt: Date, failure: FailureView?,
        compensationFailure: FailureView?, stuck: FailureView?, idempotencyKey: String?, currentStep: String?
    ) {
        self.id = id
        self.saga = saga
        self.version = version
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.failure = failure
        self.compensationFailure = compensationFailure
        self.stuck = stuck
        self.idempotencyKey = idempotencyKey
        self.currentStep = currentStep
        self.links = LinksView(runID: id)
    }

    public var runStatus: RunStatus? { RunStatus(rawValue: status) }
}

/// `GET /v1/runs`.
public struct RunsPage: APIObject {
    public var runs: [RunSummaryView]
    /// Pass it as `cursor` for the next page; null on the last one.
    @Nullable public var nextCursor: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case runs, nextCursor }

    public init(runs: [RunSummaryView], nextCursor: String?) {
        self.runs = runs
        self.nextCursor = nextCursor
    }
}

/// A run, whole: `GET /v1/runs/{id}`, `POST /v1/runs` and the operator actions.
public struct RunView: APIObject {
    public var id: String
    public var saga: String
    public var version: Int
    public var definitionHash: String
    public var status: String
    /// As it may be shown: fields the saga's input schema marks sensitive are masked.
    public var input: JSONValue
    public var createdAt: Date
    public var updatedAt: Date
    @Nullable public var failure: FailureView?
    @Nullable public var compensationFailure: FailureView?
    @Nullable public var stuck: FailureView?
    @Nullable public var deadlineAt: Date?
    @Nullable public var idempotencyKey: String?
    @Nullable public var currentStep: String?
    @Nullable public var traceId: String?
    @Nullable public var traceparent: String?
    public var steps: [StepView]
    /// For a child run: the run and step that started it (a step with "saga").
    @Nullable public var parent: ParentView?
    public var links: LinksView
    /// The saga's shape; null when its definition no longer reads.
    @Nullable public var graph: GraphView?
    /// Only on `POST /v1/runs`: false when an earlier run with the same idempotency key was returned.
    public var created: Bool?
    /// Only when the engine cannot drive the run.
    public var unrunnable: UnrunnableView?
    /// Only on a 202 answer to an operator action: the node that drives the run took it.
    public var accepted: String?
    /// Only for a completed run of a saga that declares `output`: what the run gives back.
    public var output: JSONValue?
    /// Only when the saga's `output` could not be worked out for this completed run (a value it reads is not there).
    public var outputError: String?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case id, saga, version, definitionHash, status, input, createdAt, updatedAt, failure, compensationFailure, stuck, deadlineAt
        case idempotencyKey, currentStep, traceId, traceparent, steps, links, graph, created, unrunnable, accepted, output, outputError, parent
    }

    public init(
        id: String, saga: String, version: Int, definitionHash: String, status: String, input: JSONValue, createdAt: Date,
        updatedAt: Date, failure: FailureView?, compensationFailure: FailureView?, stuck: FailureView?, deadlineAt: Date?,
        idempotencyKey: String?, currentStep: String?, traceId: String?, traceparent: String?, steps: [StepView], graph: GraphView?
    ) {
        self.id = id
        self.saga = saga
        self.version = version
        self.definitionHash = definitionHash
        self.status = status
        self.input = input
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.failure = failure
        self.compensationFailure = compensationFailure
        self.stuck = stuck
        self.deadlineAt = deadlineAt
        self.idempotencyKey = idempotencyKey
        self.currentStep = currentStep
        self.traceId = traceId
        self.traceparent = traceparent
        self.steps = steps
        self.links = LinksView(runID: id)
        self.graph = graph
    }

    public var runStatus: RunStatus? { RunStatus(rawValue: status) }

    public func step(_ name: String) -> StepView? { steps.first { $0.name == name } }
}

/// Why the engine leaves a run alone.
public struct UnrunnableView: APIObject {
    public var message: String
    public var problems: [String]
    public var canBeAbandoned: Bool

    public enum CodingKeys: String, CodingKey, CaseIterable { case message, problems, canBeAbandoned }

    public init(message: String, problems: [String], canBeAbandoned: Bool) {
        self.message = message
        self.problems = problems
        self.canBeAbandoned = canBeAbandoned
    }
}

/// One step of a run.
public struct StepView: APIObject {
    public var name: String
    public var status: String
    public var attempts: Int
    public var compensationAttempts: Int
    @Nullable public var nextAttemptAt: Date?
    @Nullable public var response: ResponseView?
    @Nullable public var lastError: String?
    public var outcomeUnknown: Bool
    @Nullable public var resolution: ResolutionView?
    /// The `Idempotency-Key` every forward attempt of the step carries.
    public var idempotencyKey: String
    /// Set while a participant's protection holds the step back.
    @Nullable public var waiting: WaitView?
    /// What a step that waits instead of calling waits for (a person's decision, a time): set from when it began.
    @Nullable public var wait: StepWaitView?
    public var attemptLog: [AttemptView]
    /// A `forEach` step that ran over its items: how many there are, how many are in each status, and each item as a
    /// step of its own (`STEP[i]`).
    @Nullable public var items: ItemsView?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case name, status, attempts, compensationAttempts, nextAttemptAt, response, lastError, outcomeUnknown, resolution
        case idempotencyKey, waiting, wait, attemptLog, items
    }

    public init(
        name: String, status: String, attempts: Int, compensationAttempts: Int, nextAttemptAt: Date?, response: ResponseView?,
        lastError: String?, outcomeUnknown: Bool, resolution: ResolutionView?, idempotencyKey: String, waiting: WaitView?,
        wait: StepWaitView? = nil, attemptLog: [AttemptView]
    ) {
        self.wait = wait
        self.name = name
        self.status = status
        self.attempts = attempts
        self.compensationAttempts = compensationAttempts
        self.nextAttemptAt = nextAttemptAt
        self.response = response
        self.lastError = lastError
        self.outcomeUnknown = outcomeUnknown
        self.resolution = resolution
        self.idempotencyKey = idempotencyKey
        self.waiting = waiting
        self.attemptLog = attemptLog
    }

    public var stepStatus: StepStatus? { StepStatus(rawValue: status) }
}

/// The items of a `forEach` step.
public struct ItemsView: APIObject {
    public var count: Int
    /// How many items are in each status (only the statuses some item is in).
    public var byStatus: [String: Int]
    public var steps: [StepView]

    public enum CodingKeys: String, CodingKey, CaseIterable { case count, byStatus, steps }

    public init(count: Int, byStatus: [String: Int], steps: [StepView]) {
        self.count = count
        self.byStatus = byStatus
        self.steps = steps
    }

    /// "3 items: 2 compensated, 1 failed".
    public var summary: String {
        let counts = byStatus.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        return "\(count) item\(count == 1 ? "" : "s")" + (counts.isEmpty ? "" : ": " + counts.joined(separator: ", "))
    }
}

/// The answer a step's participant gave (or an operator recorded).
public struct ResponseView: APIObject {
    public var status: Int
    public var body: JSONValue

    public enum CodingKeys: String, CodingKey, CaseIterable { case status, body }

    public init(status: Int, body: JSONValue) {
        self.status = status
        self.body = body
    }
}

/// Who resolved a step (or its compensation) by hand, when, and what they said.
public struct ResolutionView: APIObject {
    public var by: String
    public var note: String
    public var at: Date

    public enum CodingKeys: String, CodingKey, CaseIterable { case by, note, at }

    public init(by: String, note: String, at: Date) {
        self.by = by
        self.note = note
        self.at = at
    }
}

/// What a waiting step waits for: `approval` (a person's decision; `until` is its timeout, a rejection) or `sleep`
/// (a time; `until` is when it ends), since when, and an approval's question.
public struct StepWaitView: APIObject {
    public var kind: String
    public var since: Date
    public var until: Date
    @Nullable public var prompt: String?
    /// A callback step: what its participant posted with `succeeded` (its token is never shown); a child step: its
    /// child run's output, once it completed.
    @Nullable public var output: JSONValue?
    /// A step that runs a child saga: the child run's id (`GET /v1/runs/{child}`).
    @Nullable public var child: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case kind, since, until, prompt, output, child }

    public init(kind: String, since: Date, until: Date, prompt: String?, output: JSONValue? = nil, child: String? = nil) {
        self.kind = kind
        self.since = since
        self.until = until
        self.prompt = prompt
        self.output = output
        self.child = child
    }
}

/// The run and step that started a child run.
public struct ParentView: APIObject {
    public var run: String
    public var step: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case run, step }

    public init(run: String, step: String) {
        self.run = run
        self.step = step
    }
}

/// Why a participant holds a step back now, and until when.
public struct WaitView: APIObject {
    public var participant: String
    /// `circuit_open`, `bulkhead_full` or `rate_limited`.
    public var reason: String
    @Nullable public var until: Date?

    public enum CodingKeys: String, CodingKey, CaseIterable { case participant, reason, until }

    public init(participant: String, reason: String, until: Date?) {
        self.participant = participant
        self.reason = reason
        self.until = until
    }
}

/// One attempt at a step or its compensation.
public struct AttemptView: APIObject {
    public var phase: String
    public var number: Int
    public var idempotencyKey: String
    public var startedAt: Date
    public var sends: Int
    @Nullable public var finishedAt: Date?
    /// `succeeded`, `failed` or `in_flight`.
    public var outcome: String
    @Nullable public var httpStatus: Int?
    @Nullable public var error: String?
    @Nullable public var durationMs: Int?
    @Nullable public var node: String?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case phase, number, idempotencyKey, startedAt, sends, finishedAt, outcome, httpStatus, error, durationMs, node
    }

    public init(
        phase: String, number: Int, idempotencyKey: String, startedAt: Date, sends: Int, finishedAt: Date?, outcome: String,
        httpStatus: Int?, error: String?, durationMs: Int?, node: String?
    ) {
        self.phase = phase
        self.number = number
        self.idempotencyKey = idempotencyKey
        self.startedAt = startedAt
        self.sends = sends
        self.finishedAt = finishedAt
        self.outcome = outcome
        self.httpStatus = httpStatus
        self.error = error
        self.durationMs = durationMs
        self.node = node
    }
}

/// A saga's shape, for drawing it: its steps wave by wave and each step's dependencies.
public struct GraphView: APIObject {
    public var waves: [[String]]
    public var steps: [GraphStepView]

    public enum CodingKeys: String, CodingKey, CaseIterable { case waves, steps }

    public init(waves: [[String]], steps: [GraphStepView]) {
        self.waves = waves
        self.steps = steps
    }
}

public struct GraphStepView: APIObject {
    public var name: String
    public var dependsOn: [String]
    public var pivot: Bool
    public var compensation: Bool
    /// What a fan-out step runs over, once per item (`input.items`).
    @Nullable public var forEach: String?
    /// When the step runs, for a step with `when` (as `skald plan` says it).
    @Nullable public var when: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case name, dependsOn, pivot, compensation, forEach, when }

    public init(name: String, dependsOn: [String], pivot: Bool, compensation: Bool, forEach: String? = nil, when: String? = nil) {
        self.name = name
        self.dependsOn = dependsOn
        self.pivot = pivot
        self.compensation = compensation
        self.forEach = forEach
        self.when = when
    }
}

/// One event of a run's history.
public struct EventView: APIObject {
    public var sequence: Int64
    public var at: Date
    public var kind: String
    @Nullable public var step: String?
    @Nullable public var phase: String?
    @Nullable public var attempt: Int?
    public var message: String
    public var data: JSONValue

    public enum CodingKeys: String, CodingKey, CaseIterable { case sequence, at, kind, step, phase, attempt, message, data }

    public init(sequence: Int64, at: Date, kind: String, step: String?, phase: String?, attempt: Int?, message: String, data: JSONValue) {
        self.sequence = sequence
        self.at = at
        self.kind = kind
        self.step = step
        self.phase = phase
        self.attempt = attempt
        self.message = message
        self.data = data
    }
}

/// `GET /v1/runs/{id}/events`.
public struct EventsPage: APIObject {
    public var runId: String
    public var status: String
    public var events: [EventView]
    /// Pass it as `after` for the next page.
    public var lastSequence: Int64

    public enum CodingKeys: String, CodingKey, CaseIterable { case runId, status, events, lastSequence }

    public init(runId: String, status: String, events: [EventView], lastSequence: Int64) {
        self.runId = runId
        self.status = status
        self.events = events
        self.lastSequence = lastSequence
    }

    public var runStatus: RunStatus? { RunStatus(rawValue: status) }
}

/// `GET /v1/counts`: every status with its count (zero included), and the total.
public struct CountsView: APIObject {
    public var counts: [String: Int]
    public var total: Int

    public enum CodingKeys: String, CodingKey, CaseIterable { case counts, total }

    public init(counts: [String: Int], total: Int) {
        self.counts = counts
        self.total = total
    }
}

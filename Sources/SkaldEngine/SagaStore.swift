import Foundation
import Synchronization
import SkaldCore

/// Where runs live. Every method that changes state is one transaction: the run's new state, its new
/// events and its attempt record are stored together, or not at all, before the engine acts on them.
///
/// Nothing here assumes SQLite: a PostgreSQL store implements the same methods.
public protocol SagaStore: Sendable {
    /// Registers a definition under its name and version so runs can be started by name.
    /// The same content again is accepted; other content under a registered name and version is refused.
    func registerDefinition(_ definition: SagaDefinition, at: Date) async throws -> Registration
    /// Registered definitions, one row per name and version, by name then version.
    func definitions() async throws -> [StoredDefinition]
    /// A registered definition: the given version, or the latest.
    func definition(name: String, version: Int?) async throws -> StoredDefinition?

    /// Stores the definition (by content hash, once) and creates the run with its first transition.
    /// When the run carries an idempotency key that an earlier run already used, nothing is written and
    /// that run is returned instead.
    func createRun(_ run: NewRun, transition: SagaMachine.Transition) async throws -> CreatedRun
    /// Stores a transition that no attempt caused (an operator's cancel or retry).
    func recordTransition(runID: String, at: Date, transition: SagaMachine.Transition) async throws
    /// Records an attempt as sent, with the transition that started it. Called before the request leaves.
    func recordAttemptStarted(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws
    /// Records that an attempt with no recorded outcome is being sent again after a restart.
    func recordAttemptResent(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws
    /// Records an attempt's outcome together with the transition it caused.
    func recordAttemptFinished(_ result: AttemptResult, transition: SagaMachine.Transition) async throws

    /// Runs that are not in a terminal state and not parked, oldest first.
    func unfinishedRuns() async throws -> [StoredRun]
    /// Parks a run that has nothing under way until `until`, when its next move is due: no driver holds it in
    /// memory meanwhile. The next transition stored for the run unparks it. On a shared store the node lets go of
    /// the run, fenced on its claim, so that whichever node has room claims it when it comes due. Returns false, and
    /// parks nothing, when a participant's final callback for one of the run's steps is stored and not yet applied
    /// (`StepRow.pendingCallbackSQL`): the run has work now.
    func park(runID: String, until: Date) async throws -> Bool
    /// Unparks and returns (at most `limit` of) the unfinished runs parked until `dueBy` or earlier, soonest first.
    func unparkRuns(dueBy: Date, limit: Int) async throws -> [String]

    /// Stores what a participant posted to a callback URL, in one transaction with the check that the token's step
    /// still waits for it (`CallbackRow.receive`), and says what became of it. Every transition that gives a callback
    /// step a new attempt registers that attempt's token first.
    func receiveCallback(token: String, signal: CallbackSignal, at: Date) async throws -> CallbackReceipt
    /// What the participants of the run's callback steps posted: the final callback and last heartbeat of each token.
    func callbacks(runID: String) async throws -> [StoredCallback]
    /// How many steps wait now, by what they wait for (kinds without waiting steps left out).
    func waitingSteps() async throws -> [WaitKind: Int]
    func run(id: String) async throws -> StoredRun?
    /// Runs newest first, filtered, one page at a time.
    func listRuns(_ query: RunQuery) async throws -> RunPage
    /// The run's history after the event with sequence number `after` (0 for all), oldest first.
    func events(runID: String, after: Int64) async throws -> [StoredEvent]
    func attempts(runID: String) async throws -> [AttemptRecord]
    /// How many runs are in each status (statuses without runs left out).
    func runCounts() async throws -> [RunStatus: Int]

    /// Stores the runs `next` yields (until it yields nil), carried over from another Skald database (`skald
    /// import`) as they were, all in **one** transaction: each run's definition (unless stored), its row and steps,
    /// its history with `events` appended, and its attempts. When anything fails (a write, or `next` itself),
    /// nothing is stored. On a shared store no node owns the runs, so any node claims them once committed. A run
    /// whose id is stored already is left as it is.
    /// - Throws: `StoreError` when another run holds a run's idempotency key.
    func importRuns(events: [RunEvent], from next: @escaping @Sendable () throws -> ExportedRun?) async throws -> ImportedRuns
}

extension SagaStore {
    /// Imports one run, in a transaction of its own.
    public func importRun(_ run: ExportedRun, events: [RunEvent]) async throws -> ImportedRun {
        let pending = Mutex<ExportedRun?>(run)
        let tally = try await importRuns(events: events) { pending.withLock { value in defer { value = nil }; return value } }
        return tally.imported == 1 ? .imported : .alreadyPresent
    }
}

extension SagaStore {
    /// The run's whole history, oldest first.
    public func events(runID: String) async throws -> [RunEvent] {
        try await events(runID: runID, after: 0).map(\.event)
    }
}

public enum Registration: Sendable, Equatable {
    case registered
    case alreadyRegistered
    /// Another definition is registered under this name and version.
    case conflict(existingHash: String)
}

public enum CreatedRun: Sendable {
    case created
    /// A run with the same idempotency key exists; it is returned instead.
    case existing(StoredRun)
}

public struct StoredDefinition: Sendable {
    public var hash: String
    public var name: String
    public var version: Int
    public var document: JSONValue
    public var createdAt: Date

    public init(hash: String, name: String, version: Int, document: JSONValue, createdAt: Date) {
        self.hash = hash
        self.name = name
        self.version = version
        self.document = document
        self.createdAt = createdAt
    }
}

public struct StoredEvent: Sendable {
    /// Increases along a run's history; pass the last one seen as `after` to read only what is new.
    public var sequence: Int64
    public var event: RunEvent

    public init(sequence: Int64, event: RunEvent) {
        self.sequence = sequence
        self.event = event
    }
}

public struct RunQuery: Sendable {
    public var status: RunStatus?
    public var saga: String?
    public var limit: Int
    /// The id of the last run of the previous page.
    public var cursor: String?
    /// Only runs started at or after this time.
    public var createdAfter: Date?
    /// Only runs started before this time.
    public var createdBefore: Date?
    /// Only the run started with this idempotency key.
    public var idempotencyKey: String?
    /// Only running runs with a step waiting for this (`approval`: for a person's decision), oldest first.
    public var waiting: WaitKind?

    public init(
        status: RunStatus? = nil, saga: String? = nil, limit: Int = 50, cursor: String? = nil, createdAfter: Date? = nil,
        createdBefore: Date? = nil, idempotencyKey: String? = nil, waiting: WaitKind? = nil
    ) {
        self.waiting = waiting
        self.status = status
        self.saga = saga
        self.limit = limit
        self.cursor = cursor
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
        self.idempotencyKey = idempotencyKey
    }
}

public struct RunSummary: Sendable {
    public var id: String
    public var sagaName: String
    public var sagaVersion: Int
    public var status: RunStatus
    public var createdAt: Date
    public var updatedAt: Date
    public var failure: RunFailure?
    public var compensationFailure: RunFailure?
    public var stuck: RunFailure?
    public var idempotencyKey: String?
    /// The first step (in file order) being sent, undone or waiting to be retried, for an unfinished run.
    public var currentStep: String?

    public init(
        id: String, sagaName: String, sagaVersion: Int, status: RunStatus, createdAt: Date, updatedAt: Date,
        failure: RunFailure?, compensationFailure: RunFailure?, stuck: RunFailure? = nil, idempotencyKey: String?, currentStep: String? = nil
    ) {
        self.currentStep = currentStep
        self.stuck = stuck
        self.id = id
        self.sagaName = sagaName
        self.sagaVersion = sagaVersion
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.failure = failure
        self.compensationFailure = compensationFailure
        self.idempotencyKey = idempotencyKey
    }
}

public struct RunPage: Sendable {
    public var runs: [RunSummary]
    /// Pass as `cursor` for the next page; nil on the last page.
    public var nextCursor: String?

    public init(runs: [RunSummary], nextCursor: String?) {
        self.runs = runs
        self.nextCursor = nextCursor
    }
}

/// A run about to be created.
public struct NewRun: Sendable {
    public var id: String
    public var definition: SagaDefinition
    public var input: JSONValue
    public var createdAt: Date
    /// A caller's key: starting again with the same key returns the first run instead of a second one.
    public var idempotencyKey: String?
    /// On a shared store: whether the node creating the run owns it at once (a one-shot `skald run`), or leaves it
    /// for any node to claim (a node serving the API, so new runs spread over the nodes). Ignored otherwise.
    public var ownedByCreator: Bool
    /// The run's trace context.
    public var trace: RunTrace?

    public init(
        id: String, definition: SagaDefinition, input: JSONValue, createdAt: Date, idempotencyKey: String? = nil, ownedByCreator: Bool = true,
        trace: RunTrace? = nil
    ) {
        self.trace = trace
        self.id = id
        self.definition = definition
        self.input = input
        self.createdAt = createdAt
        self.idempotencyKey = idempotencyKey
        self.ownedByCreator = ownedByCreator
    }
}

/// A run as stored: the exact definition it runs, its input and its state.
public struct StoredRun: Sendable {
    public var id: String
    public var sagaName: String
    public var sagaVersion: Int
    public var definitionHash: String
    public var definitionDocument: JSONValue
    public var input: JSONValue
    public var createdAt: Date
    public var updatedAt: Date
    public var state: RunState
    public var idempotencyKey: String?
    /// The run's trace (nil for a run stored before Skald kept one).
    public var trace: RunTrace?
    /// On a shared store: which claim of the run this is (it changes with every claim); the driver's writes are
    /// fenced on it (`RunFence`). Nil on a store of one engine.
    public var claimEpoch: Int64?

    public init(
        id: String, sagaName: String, sagaVersion: Int, definitionHash: String, definitionDocument: JSONValue,
        input: JSONValue, createdAt: Date, updatedAt: Date, state: RunState, idempotencyKey: String? = nil, trace: RunTrace? = nil,
        claimEpoch: Int64? = nil
    ) {
        self.claimEpoch = claimEpoch
        self.trace = trace
        self.idempotencyKey = idempotencyKey
        self.id = id
        self.sagaName = sagaName
        self.sagaVersion = sagaVersion
        self.definitionHash = definitionHash
        self.definitionDocument = definitionDocument
        self.input = input
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.state = state
    }
}

/// Names one attempt: its run, step, phase and number (1-based, per phase).
public struct AttemptKey: Sendable, Hashable {
    public var runID: String
    public var step: Int
    public var stepName: String
    public var phase: Phase
    public var number: Int

    public init(runID: String, step: Int, stepName: String, phase: Phase, number: Int) {
        self.runID = runID
        self.step = step
        self.stepName = stepName
        self.phase = phase
        self.number = number
    }

    /// The same for every attempt of one call, across retries and restarts, so participants can deduplicate.
    public var idempotencyKey: String { IdempotencyKey.of(runID: runID, step: stepName, phase: phase) }
}

/// The outcome of an attempt, as stored.
public struct AttemptResult: Sendable {
    public var attempt: AttemptKey
    public var outcome: AttemptOutcome
    public var duration: Duration
    public var finishedAt: Date

    public init(attempt: AttemptKey, outcome: AttemptOutcome, duration: Duration, finishedAt: Date) {
        self.attempt = attempt
        self.outcome = outcome
        self.duration = duration
        self.finishedAt = finishedAt
    }
}

/// One attempt as stored: started, and finished once its outcome is known.
public struct AttemptRecord: Sendable, Hashable {
    public var key: AttemptKey
    public var startedAt: Date
    /// How many times it was sent: more than 1 when a restart found it without an outcome.
    public var sends: Int
    public var finishedAt: Date?
    public var succeeded: Bool?
    public var httpStatus: Int?
    public var error: String?
    public var durationMs: Int?
    /// On a shared store, the node that last sent it.
    public var node: String?

    public init(
        key: AttemptKey, startedAt: Date, sends: Int = 1, finishedAt: Date? = nil, succeeded: Bool? = nil,
        httpStatus: Int? = nil, error: String? = nil, durationMs: Int? = nil, node: String? = nil
    ) {
        self.node = node
        self.key = key
        self.startedAt = startedAt
        self.sends = sends
        self.finishedAt = finishedAt
        self.succeeded = succeeded
        self.httpStatus = httpStatus
        self.error = error
        self.durationMs = durationMs
    }

    public mutating func finish(with result: AttemptResult) {
        finishedAt = result.finishedAt
        durationMs = Int(result.duration.milliseconds.rounded())
        switch result.outcome {
        case .succeeded(let response):
            succeeded = true
            httpStatus = response.status
            error = nil
        case .failed(let failure):
            succeeded = false
            httpStatus = failure.response?.status
            error = failure.reason
        }
    }
}

/// The claim the current task's writes of a run are fenced on, on a shared store: a driver (or an operator's
/// action) sets it to the `claimEpoch` it read the run with, and a write is refused (`RunOwnershipLost`) unless the
/// run is still held by that very claim. So a node that let a run go and claimed it back cannot have an old driver
/// of it store anything, even a transition without an attempt (a deadline, a participant wait).
public enum RunFence {
    @TaskLocal public static var epoch: Int64?
}

/// The final callback and last heartbeat stored for one token (one attempt of a callback step).
public struct StoredCallback: Sendable, Hashable {
    public var runID: String
    public var step: Int
    public var attempt: Int
    public var final: CallbackSignal?
    public var receivedAt: Date?
    public var heartbeatAt: Date?
    /// The token it was posted to (nil where a store does not say).
    public var token: String?

    public init(
        runID: String, step: Int, attempt: Int, final: CallbackSignal?, receivedAt: Date?, heartbeatAt: Date?, token: String? = nil
    ) {
        self.token = token
        self.runID = runID
        self.step = step
        self.attempt = attempt
        self.final = final
        self.receivedAt = receivedAt
        self.heartbeatAt = heartbeatAt
    }
}

/// What became of a callback a participant posted.
public enum CallbackReceipt: Sendable, Hashable {
    /// Stored now (200).
    case stored(StoredCallback)
    /// The same callback was stored before (200).
    case repeated(StoredCallback)
    /// It contradicts the callback stored before (409).
    case conflict(String)
    /// No step has this token (404).
    case unknown
    /// The step no longer waits for this token (410).
    case gone(String)
}

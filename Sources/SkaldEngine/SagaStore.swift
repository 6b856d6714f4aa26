import Foundation
import SkaldCore

/// Where runs live. Every method that changes state is one transaction: the run's new state, its new
/// events and its attempt record are stored together, or not at all, before the engine acts on them.
///
/// Nothing here assumes SQLite: a PostgreSQL store implements the same methods.
public protocol SagaStore: Sendable {
    /// Stores the definition (by content hash, once) and creates the run with its first transition.
    func createRun(_ run: NewRun, transition: SagaMachine.Transition) async throws
    /// Records an attempt as sent, with the transition that started it. Called before the request leaves.
    func recordAttemptStarted(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws
    /// Records that an attempt with no recorded outcome is being sent again after a restart.
    func recordAttemptResent(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws
    /// Records an attempt's outcome together with the transition it caused.
    func recordAttemptFinished(_ result: AttemptResult, transition: SagaMachine.Transition) async throws

    /// Runs that are not in a terminal state, oldest first.
    func unfinishedRuns() async throws -> [StoredRun]
    func run(id: String) async throws -> StoredRun?
    /// The run's history, oldest first.
    func events(runID: String) async throws -> [RunEvent]
    func attempts(runID: String) async throws -> [AttemptRecord]
}

/// A run about to be created.
public struct NewRun: Sendable {
    public var id: String
    public var definition: SagaDefinition
    public var input: JSONValue
    public var createdAt: Date

    public init(id: String, definition: SagaDefinition, input: JSONValue, createdAt: Date) {
        self.id = id
        self.definition = definition
        self.input = input
        self.createdAt = createdAt
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

    public init(
        id: String, sagaName: String, sagaVersion: Int, definitionHash: String, definitionDocument: JSONValue,
        input: JSONValue, createdAt: Date, updatedAt: Date, state: RunState
    ) {
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
    public var idempotencyKey: String { "\(runID):\(stepName):\(phase.rawValue)" }
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

    public init(
        key: AttemptKey, startedAt: Date, sends: Int = 1, finishedAt: Date? = nil, succeeded: Bool? = nil,
        httpStatus: Int? = nil, error: String? = nil, durationMs: Int? = nil
    ) {
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

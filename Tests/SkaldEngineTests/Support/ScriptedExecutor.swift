import Foundation
import SkaldCore
import SkaldEngine
import Synchronization
import SkaldTestSupport

/// An executor that answers from a script and records every request it was given.
final class ScriptedExecutor: StepExecutor {
    struct Call: Sendable {
        var key: AttemptKey
        var context: TemplateContext
    }

    private struct State {
        var script: [String: [AttemptOutcome]] = [:]
        var calls: [Call] = []
        var waiters: [(Int, CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    /// `script["a/forward"] = [.unavailable, .ok]`: answers in order, then `.ok` forever.
    init(_ script: [String: [AttemptOutcome]] = [:]) {
        state.withLock { $0.script = script }
    }

    var calls: [Call] { state.withLock { $0.calls } }

    func execute(_ request: StepRequest) async -> AttemptOutcome {
        let name = "\(request.attempt.stepName)/\(request.attempt.phase.rawValue)"
        let (outcome, ready) = state.withLock { state -> (AttemptOutcome, [CheckedContinuation<Void, Never>]) in
            state.calls.append(Call(key: request.attempt, context: request.context))
            var outcome = AttemptOutcome.succeeded(StepResponse(status: 200, body: ["id": .string("\(name)#\(state.calls.count)")]))
            if var queue = state.script[name], !queue.isEmpty {
                outcome = queue.removeFirst()
                state.script[name] = queue
            }
            let count = state.calls.count
            let ready = state.waiters.filter { $0.0 <= count }.map(\.1)
            state.waiters.removeAll { $0.0 <= count }
            return (outcome, ready)
        }
        for continuation in ready { continuation.resume() }
        return outcome
    }

    /// Suspends until `count` requests have been made.
    func waitForCalls(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.calls.count >= count { return true }
                state.waiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

extension AttemptOutcome {
    static let ok = AttemptOutcome.succeeded(StepResponse(status: 200, body: ["id": "x"]))
    static let unavailable = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 503", isRetryable: true))
    static let declined = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 402", isRetryable: false))
}

/// A store that forwards to another until told to fail: models a process that dies at a chosen point.
final class FailingStore: SagaStore {
    enum FailurePoint: Sendable { case never, attemptFinished }
    let inner: any SagaStore
    let failAt: FailurePoint

    init(_ inner: any SagaStore, failAt: FailurePoint) {
        self.inner = inner
        self.failAt = failAt
    }

    struct Died: Error {}

    func registerDefinition(_ definition: SagaDefinition, at: Date) async throws -> Registration {
        try await inner.registerDefinition(definition, at: at)
    }
    func definitions() async throws -> [StoredDefinition] { try await inner.definitions() }
    func definition(name: String, version: Int?) async throws -> StoredDefinition? { try await inner.definition(name: name, version: version) }
    func createRun(_ run: NewRun, transition: SagaMachine.Transition) async throws -> CreatedRun {
        try await inner.createRun(run, transition: transition)
    }
    func recordTransition(runID: String, at: Date, transition: SagaMachine.Transition) async throws {
        try await inner.recordTransition(runID: runID, at: at, transition: transition)
    }
    func listRuns(_ query: RunQuery) async throws -> RunPage { try await inner.listRuns(query) }
    func recordAttemptStarted(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws {
        try await inner.recordAttemptStarted(attempt, at: at, transition: transition)
    }
    func recordAttemptResent(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws {
        try await inner.recordAttemptResent(attempt, at: at, transition: transition)
    }
    func recordAttemptFinished(_ result: AttemptResult, transition: SagaMachine.Transition) async throws {
        if failAt == .attemptFinished { throw Died() }
        try await inner.recordAttemptFinished(result, transition: transition)
    }
    func unfinishedRuns() async throws -> [StoredRun] { try await inner.unfinishedRuns() }
    func park(runID: String, until: Date) async throws -> Bool { try await inner.park(runID: runID, until: until) }
    func unparkRuns(dueBy: Date, limit: Int) async throws -> [String] { try await inner.unparkRuns(dueBy: dueBy, limit: limit) }
    func receiveCallback(token: String, signal: CallbackSignal, at: Date) async throws -> CallbackReceipt {
        try await inner.receiveCallback(token: token, signal: signal, at: at)
    }
    func callbacks(runID: String) async throws -> [StoredCallback] { try await inner.callbacks(runID: runID) }
    func waitingSteps() async throws -> [WaitKind: Int] { try await inner.waitingSteps() }
    func run(id: String) async throws -> StoredRun? { try await inner.run(id: id) }
    func events(runID: String, after: Int64) async throws -> [StoredEvent] { try await inner.events(runID: runID, after: after) }
    func attempts(runID: String) async throws -> [AttemptRecord] { try await inner.attempts(runID: runID) }
    func runCounts() async throws -> [RunStatus: Int] { try await inner.runCounts() }
    func importRuns(events: [RunEvent], from next: @escaping @Sendable () throws -> ExportedRun?) async throws -> ImportedRuns {
        try await inner.importRuns(events: events, from: next)
    }
}

func saga(_ json: String) throws -> SagaDefinition {
    try DefinitionParser.parse(Array(json.utf8))
}

let twoSteps = """
    { "name": "pair", "version": 1,
      "defaults": { "retry": { "maxAttempts": 3, "initialInterval": "1s", "backoffCoefficient": 2, "jitter": "none" } },
      "steps": [
        { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a", "body": { "sku": "{{input.sku}}" } },
          "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a/{{steps.a.response.body.id}}" } },
        { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b/{{steps.a.response.body.id}}" } }
      ] }
    """

import Foundation
import SkaldCore
import Testing
@testable import SkaldEngine
import SkaldTestSupport

/// Operator actions travel between nodes as JSON, and nodes of two versions share a database during an upgrade.
@Suite(.timeLimit(.minutes(10))) struct OperatorActionWireTests {
    @Test func aResolveFromANodeThatSendsNoResponseIsRead() throws {
        // As a node written before `response` existed sends it.
        let older = #"{"resolveCompensation":{"step":"charge","note":"refunded by hand","by":"ana"}}"#
        let action = try JSONDecoder().decode(OperatorAction.self, from: Data(older.utf8))
        #expect(action == .resolveCompensation(step: "charge", note: "refunded by hand", by: "ana", response: nil))
        // And a newer node's action with a response is read back as it was.
        let newer = OperatorAction.resolveCompensation(step: "card", note: "issued", by: "ana", response: #"{"cardId":"C-1"}"#)
        #expect(try JSONDecoder().decode(OperatorAction.self, from: JSONEncoder().encode(newer)) == newer)
    }

    @Test func retryIsForwardedAsTheActionEveryVersionKnows() async throws {
        // `retry` is new: what is forwarded to the node that drives the run is `resume` or `retryCompensation`,
        // chosen on the stored state, which nodes of every version read.
        let saga = try DefinitionParser.parse(Array(#"""
            { "name": "s", "version": 1, "defaults": { "retry": { "maxAttempts": 1 } }, "steps": [
              { "name": "a", "pivot": true, "request": { "method": "POST", "url": "http://127.0.0.1:1/a" } },
              { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b" } } ] }
            """#.utf8))
        let machine = SagaMachine(saga: saga)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let start = machine.start(runID: "r", at: now)
        var state = start.state
        for (step, outcome) in [(0, AttemptOutcome.succeeded(StepResponse(status: 200, body: .null))),
                                (1, .failed(AttemptFailure(kind: .status, reason: "HTTP 404", isRetryable: false)))] {
            state = machine.finishAttempt(machine.beginAttempt(state, step: step, at: now).state, step: step, outcome: outcome, duration: .zero, at: now, jitterSample: 0).state
        }
        #expect(state.status == .stuck)
        let store = InMemoryStore()
        _ = try await store.createRun(NewRun(id: "r", definition: saga, input: [:], createdAt: now), transition: start)
        try await store.recordTransition(runID: "r", at: now, transition: SagaMachine.Transition(state: state, events: []))
        let engine = Engine(store: store, executor: ScriptedExecutor())
        #expect(try await engine.concrete(.retry(step: nil, by: "ana", note: "fixed"), runID: "r") == .resume(note: "fixed", by: "ana"))
        let text = String(decoding: try JSONEncoder().encode(OperatorAction.resume(note: "fixed", by: "ana")), as: UTF8.self)
        #expect(!text.contains("retry"), "\(text)")
    }
}

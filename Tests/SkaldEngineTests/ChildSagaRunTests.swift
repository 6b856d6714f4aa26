import Foundation
import SkaldCore
import Testing
@testable import SkaldEngine
import SkaldTestSupport

/// Sagas inside sagas, driven on every store: a step starts a child run (once, by its key) and goes on with the
/// child's output; a child that compensates fails the step with nothing applied; undoing the step reverts the child;
/// and a parent that turns back while its child goes on cancels the child.
@Suite(.timeLimit(.minutes(5))) struct ChildSagaRunTests {
    static let parcel = """
        { "name": "ship-parcel", "version": 1, "steps": [
            { "name": "book", "request": { "method": "POST", "url": "http://127.0.0.1:1/book", "body": { "order": "{{input.orderId}}" } },
              "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/book" } },
            { "name": "label", "request": { "method": "POST", "url": "http://127.0.0.1:1/label" } } ],
          "output": { "tracking": "{{steps.book.response.body.id}}" } }
        """
    static let checkout = """
        { "name": "checkout", "version": 1, "defaults": { "retry": { "maxAttempts": 1 } }, "steps": [
            { "name": "charge", "request": { "method": "POST", "url": "http://127.0.0.1:1/charge" },
              "compensation": { "method": "POST", "url": "http://127.0.0.1:1/refund" } },
            { "name": "ship", "saga": { "name": "ship-parcel", "version": 1, "input": { "orderId": "{{input.orderId}}" } } },
            { "name": "notify", "request": { "method": "POST", "url": "http://127.0.0.1:1/notify",
              "body": { "tracking": "{{steps.ship.output.tracking}}" } } } ] }
        """

    func engine(_ store: any SagaStore, _ executor: ScriptedExecutor, _ clock: ManualClock) -> Engine {
        Engine(store: store, executor: executor, clock: clock, configuration: EngineConfiguration(environment: [:], jitterSample: { 1 }))
    }

    /// Drives the run to its end, moving the injected clock on whenever a driver waits for it (the parent's looks at
    /// its child come on the clock).
    func drive(_ engine: Engine, _ clock: ManualClock, _ id: String) async throws -> RunState {
        let advancing = Task {
            while !Task.isCancelled {
                await clock.waitForSleepers()
                clock.advance(by: 1)
            }
        }
        defer { advancing.cancel() }
        return try await engine.drive(runID: id)
    }

    func start(_ store: any SagaStore, _ engine: Engine, orderId: String = "o-1") async throws -> String {
        _ = try await store.registerDefinition(try saga(Self.parcel), at: Date())
        return try await engine.startRun(try saga(Self.checkout), input: ["orderId": .string(orderId)])
    }

    @Test(arguments: EngineStore.tested)
    func aChildRunCompletesAndTheParentGoesOnWithItsOutput(on kind: EngineStore) async throws {
        try await kind.with { store in
            let executor = ScriptedExecutor(["book/forward": [.succeeded(StepResponse(status: 201, body: ["id": "trk-9"]))]])
            let clock = ManualClock()
            let engine = engine(store, executor, clock)
            let id = try await start(store, engine)
            let state = try await drive(engine, clock, id)
            #expect(state.status == .completed)
            let notify = try #require(executor.calls.last)
            #expect(notify.key.stepName == "notify" && notify.context.callbackOutputs["ship"] == ["tracking": "trk-9"])
            let childID = try #require(state.steps[1].wait?.token)
            let child = try #require(try await store.run(id: childID))
            #expect(child.state.status == .completed && child.sagaName == "ship-parcel")
            #expect(child.idempotencyKey == "\(id):ship:child", "the child's key comes from the parent's step")
            #expect(executor.calls.first { $0.key.stepName == "book" }?.context.input == ["orderId": "o-1"])
        }
    }

    @Test(arguments: EngineStore.tested)
    func aChildThatCompensatesFailsTheStepWithNothingAppliedAndTheParentTurnsBack(on kind: EngineStore) async throws {
        try await kind.with { store in
            let refused = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 422", isRetryable: false))
            let executor = ScriptedExecutor(["label/forward": [refused]])
            let clock = ManualClock()
            let engine = engine(store, executor, clock)
            let id = try await start(store, engine)
            let state = try await drive(engine, clock, id)
            #expect(state.status == .compensated)
            #expect(state.steps.map(\.status) == [.compensated, .failed, .pending])
            #expect(state.failure?.reason.hasPrefix("its child run") == true && state.failure?.reason.contains("was compensated") == true)
            let childID = try #require(state.steps[1].wait?.token)
            let child = try #require(try await store.run(id: childID))
            #expect(child.state.status == .compensated, "the child undid its own booking")
            #expect(!executor.calls.contains { $0.key.stepName == "notify" })
        }
    }

    @Test(arguments: EngineStore.tested)
    func undoingTheStepRevertsTheCompletedChild(on kind: EngineStore) async throws {
        try await kind.with { store in
            let refused = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 400", isRetryable: false))
            let executor = ScriptedExecutor(["notify/forward": [refused]])
            let clock = ManualClock()
            let engine = engine(store, executor, clock)
            let id = try await start(store, engine)
            let state = try await drive(engine, clock, id)
            #expect(state.status == .compensated)
            #expect(state.steps.map(\.status) == [.compensated, .compensated, .failed])
            let childID = try #require(state.steps[1].wait?.token)
            let child = try #require(try await store.run(id: childID))
            #expect(child.state.status == .compensated, "the child was reverted")
            #expect(try await store.events(runID: child.id).contains { $0.kind == .runReverted })
            // The child's booking was undone before the parent's charge: the undo goes in reverse.
            let order = executor.calls.filter { $0.key.phase == .compensate }.map(\.key.stepName)
            #expect(order == ["book", "charge"])
        }
    }

    /// A parent cancelled while its child goes on cancels the child: the child undoes what it did, the step fails
    /// with nothing applied, and the parent undoes the steps before it.
    @Test(arguments: EngineStore.tested)
    func cancellingTheParentCancelsItsRunningChild(on kind: EngineStore) async throws {
        try await kind.with { store in
            let slowParcel = Self.parcel.replacingOccurrences(
                of: #"{ "name": "label", "request": { "method": "POST", "url": "http://127.0.0.1:1/label" } }"#,
                with: #"{ "name": "pickup", "sleep": "1h" }"#)
            _ = try await store.registerDefinition(try saga(slowParcel), at: Date())
            let executor = ScriptedExecutor()
            let clock = ManualClock()
            let engine = engine(store, executor, clock)
            let id = try await engine.startRun(try saga(Self.checkout), input: ["orderId": "o-3"])
            let driving = Task { try await engine.drive(runID: id) }
            try await waitFor("the child to sleep") {
                guard let token = try await store.run(id: id)?.state.steps[1].wait?.token else { return false }
                return try await store.run(id: token)?.state.steps[1].status == .waiting
            }
            let childID = try #require(try await store.run(id: id)?.state.steps[1].wait?.token)
            _ = try await engine.cancel(runID: id, reason: "customer cancelled", by: "ana")
            // The parent's looks at its child come on the clock; the child's hour of sleep must not pass meanwhile:
            // the clock moves only to a look (a deadline before the child's sleep ends), once one is waited for.
            let sleepEnds = clock.now().addingTimeInterval(3000)
            let advancing = Task {
                while !Task.isCancelled {
                    await clock.waitForSleepers()
                    // Only the child's sleep is pending while the parent is busy: look again in a moment.
                    if let next = clock.sleepingUntil.first, next < sleepEnds { clock.advance(to: next) } else { try? await Task.sleep(for: .milliseconds(2)) }
                }
            }
            defer { advancing.cancel() }
            let state = try await driving.value
            #expect(state.status == .compensated)
            #expect(state.steps.map(\.status) == [.compensated, .failed, .pending])
            let child = try #require(try await store.run(id: childID))
            #expect(child.state.status == .compensated, "the child was cancelled and undid its booking")
            #expect(try await store.events(runID: childID).contains { $0.kind == .runCancelled && $0.message.contains("its parent run \(id) turned back") })
            #expect(executor.calls.filter { $0.key.phase == .compensate }.map(\.key.stepName) == ["book", "charge"])
        }
    }

    @Test func aCompletedRunOfASagaWithAPivotCannotBeReverted() throws {
        let machine = SagaMachine(saga: try saga(#"{ "name": "p", "version": 1, "steps": [ { "name": "a", "pivot": true, "request": { "method": "POST", "url": "http://127.0.0.1:1/a" } } ] }"#))
        var state = machine.start(runID: "r", at: Date()).state
        state = machine.beginAttempt(state, step: 0, at: Date()).state
        state = machine.finishAttempt(state, step: 0, outcome: .ok, duration: .zero, at: Date(), jitterSample: 0).state
        #expect(state.status == .completed)
        #expect(machine.revert(state, note: "n", at: Date()) == nil)
    }
}

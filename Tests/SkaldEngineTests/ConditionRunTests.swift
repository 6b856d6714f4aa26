import Foundation
import SkaldCore
import Testing
@testable import SkaldEngine
import SkaldTestSupport

/// Steps that decide, driven on every store: a 200 that carries a rejection turns the run back, a pending answer is
/// retried on the injected clock, and a step whose `when` is false is skipped and never compensated.
@Suite(.timeLimit(.minutes(5))) struct ConditionRunTests {
    static let opening = """
        { "name": "open-account", "version": 1, "defaults": { "retry": { "maxAttempts": 3, "initialInterval": "1s", "jitter": "none" } }, "steps": [
          { "name": "reserve", "request": { "method": "POST", "url": "http://127.0.0.1:1/reserve" },
            "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/reserve" } },
          { "name": "kyc", "request": { "method": "POST", "url": "http://127.0.0.1:1/kyc" },
            "failWhen": { "value": "{{steps.kyc.response.body.decision}}", "equals": "rejected" },
            "retryWhen": { "value": "{{steps.kyc.response.body.decision}}", "equals": "pending" } },
          { "name": "review", "when": { "value": "{{input.deposit}}", "greaterThan": 10000 },
            "request": { "method": "POST", "url": "http://127.0.0.1:1/review" },
            "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/review" } },
          { "name": "open", "request": { "method": "POST", "url": "http://127.0.0.1:1/open",
            "body": { "reviewer": "{{steps.review.response.body.by ?? \\"nobody\\"}}" } } } ] }
        """

    static func kyc(_ decision: String) -> AttemptOutcome { .succeeded(StepResponse(status: 200, body: ["decision": .string(decision)])) }

    func engine(_ store: any SagaStore, _ executor: ScriptedExecutor, _ clock: ManualClock) -> Engine {
        Engine(store: store, executor: executor, clock: clock, configuration: EngineConfiguration(environment: [:], jitterSample: { 1 }))
    }

    @Test(arguments: EngineStore.tested)
    func aSmallDepositSkipsTheReviewAndTheAccountOpensWithoutIt(on kind: EngineStore) async throws {
        try await kind.with { store in
            let executor = ScriptedExecutor(["kyc/forward": [Self.kyc("approved")]])
            let id = try await engine(store, executor, ManualClock()).startRun(try saga(Self.opening), input: ["deposit": 500])
            let state = try await engine(store, executor, ManualClock()).drive(runID: id)
            #expect(state.status == .completed)
            #expect(state.steps.map(\.status) == [.succeeded, .succeeded, .skipped, .succeeded])
            #expect(executor.calls.map(\.key.stepName) == ["reserve", "kyc", "open"], "review was never called")
            #expect(executor.calls.last?.context.responses["review"] == nil)
            let events = try await store.events(runID: id)
            #expect(events.contains { $0.kind == .stepSkipped && $0.step == "review" })
            #expect(events.last?.message == "run completed: 3 steps succeeded; skipped by their condition: review")
            #expect(try await store.run(id: id)?.state == state, "the skip was stored")
        }
    }

    @Test(arguments: EngineStore.tested)
    func aRejectionIn200TurnsTheRunBack(on kind: EngineStore) async throws {
        try await kind.with { store in
            let executor = ScriptedExecutor(["kyc/forward": [Self.kyc("rejected")]])
            let clock = ManualClock()
            let id = try await engine(store, executor, clock).startRun(try saga(Self.opening), input: ["deposit": 50000])
            let state = try await engine(store, executor, clock).drive(runID: id)
            #expect(state.status == .compensated)
            #expect(state.steps.map(\.status) == [.compensated, .failed, .pending, .pending])
            #expect(state.failure?.reason.contains("refused by failWhen") == true)
            #expect(executor.calls.map(\.key.stepName) == ["reserve", "kyc", "reserve"])
            let attempt = try #require(try await store.attempts(runID: id).first { $0.key.stepName == "kyc" })
            #expect(attempt.succeeded == false && attempt.httpStatus == 200)
        }
    }

    @Test(arguments: EngineStore.tested)
    func aPendingAnswerIsRetriedOnTheInjectedClock(on kind: EngineStore) async throws {
        try await kind.with { store in
            let executor = ScriptedExecutor(["kyc/forward": [Self.kyc("pending"), Self.kyc("pending"), Self.kyc("approved")]])
            let clock = ManualClock()
            let engine = engine(store, executor, clock)
            let id = try await engine.startRun(try saga(Self.opening), input: ["deposit": 50000])
            let drive = Task { try await engine.drive(runID: id) }
            for calls in [3, 4] {
                await executor.waitForCalls(calls - 1)
                await clock.waitForSleepers()
                clock.advance(by: 10)
            }
            let state = try await drive.value
            #expect(state.status == .completed)
            #expect(executor.calls.map(\.key.stepName) == ["reserve", "kyc", "kyc", "kyc", "review", "open"])
            #expect(executor.calls.last?.context.responses["review"] != nil)
        }
    }
}

import Foundation
import Testing

@testable import SkaldCore
import SkaldTestSupport

/// A payment confirmed by webhook: the provider accepts the charge (202), then posts the result to the callback URL.
let paymentByWebhook = """
    { "name": "pay", "version": 1, "defaults": { "retry": { "maxAttempts": 2, "initialInterval": "1s", "jitter": "none" } }, "steps": [
      { "name": "reserve", "request": { "method": "POST", "url": "http://h/reserve" },
        "compensation": { "method": "DELETE", "url": "http://h/reserve/{{steps.reserve.idempotencyKey}}" } },
      { "name": "charge", "callback": { "timeout": "2h", "heartbeat": "10m" },
        "request": { "method": "POST", "url": "http://h/charges", "body": { "notify": "{{callback.url}}", "token": "{{callback.token}}" } },
        "compensation": { "method": "POST", "url": "http://h/refunds/{{steps.charge.idempotencyKey}}" } },
      { "name": "ship", "request": { "method": "POST", "url": "http://h/ship/{{steps.charge.callback.output.chargeId}}" } }
    ] }
    """

@Suite(.timeLimit(.minutes(10))) struct CallbackStepTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(paymentByWebhook))
    }

    func expectRunnable(_ state: RunState, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        #expect(machine.problems(in: state).isEmpty, "\(machine.problems(in: state))", sourceLocation: sourceLocation)
    }

    /// reserve succeeded; charge's first attempt is in flight with token T1.
    func charging(token: String = "T1") -> RunState {
        var state = machine.start(runID: "r", at: t0).state
        state = machine.beginAttempt(state, step: 0, at: t0).state
        state = machine.finishAttempt(state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        return machine.beginAttempt(state, step: 1, at: t0, callbackToken: token).state
    }

    func accepted() -> RunState {
        machine.finishAttempt(charging(), step: 1, outcome: .succeeded(StepResponse(status: 202, body: ["id": "p1"])), duration: .zero, at: t0, jitterSample: 0).state
    }

    @Test func anAcceptedRequestWaitsForItsCallbackAndTheCallbackCompletesTheStep() throws {
        let inFlight = charging()
        #expect(inFlight.steps[1].wait?.token == "T1" && inFlight.steps[1].wait?.attempt == 1, "the token is stored with the attempt")
        let waiting = accepted()
        expectRunnable(waiting)
        #expect(waiting.steps[1].status == .waiting)
        #expect(waiting.steps[1].dueAt == t0.addingTimeInterval(600), "the heartbeat comes due before the timeout")
        #expect(waiting.steps[1].wait?.until == t0.addingTimeInterval(7200))
        #expect(waiting.steps[2].status == .pending, "not done until the callback comes")
        #expect(machine.isAtOrPastPivot(waiting) == false)

        let done = try #require(
            machine.callbackReceived(waiting, step: 1, attempt: 1, signal: .succeeded(output: ["chargeId": "ch_9"]), receivedAt: t0, at: t0))
        expectRunnable(done.state)
        #expect(done.state.steps[1].status == .succeeded)
        #expect(done.state.steps[1].wait?.output == ["chargeId": "ch_9"])
        #expect(done.state.steps[2].status == .running && done.state.steps[2].dueAt == t0)
        #expect(done.events.map(\.kind) == [.callbackReceived, .stepSucceeded])
        #expect(machine.callbackReceived(done.state, step: 1, attempt: 1, signal: .succeeded(output: [:]), receivedAt: t0, at: t0) == nil)
    }

    @Test func aCallbackBeforeTheAnswerWaitsForTheAnswer() {
        #expect(machine.callbackReceived(charging(), step: 1, attempt: 1, signal: .succeeded(output: .null), receivedAt: t0, at: t0) == nil)
    }

    @Test func aFailedCallbackIsARefusalAndTheRunCompensates() throws {
        let failed = try #require(
            machine.callbackReceived(accepted(), step: 1, attempt: 1, signal: .failed(error: "card declined"), receivedAt: t0, at: t0))
        expectRunnable(failed.state)
        #expect(failed.state.steps[1].status == .failed, "nothing was applied")
        #expect(failed.state.status == .compensating)
        #expect(failed.state.steps[0].status == .compensating)
        #expect(failed.state.steps[1].lastError == "its participant called back that it failed: card declined")
    }

    @Test func heartbeatsPushTheDeadlineAndMissingOneIsAnUnknownOutcome() throws {
        let waiting = accepted()
        let later = t0.addingTimeInterval(500)
        let beat = try #require(machine.callbackReceived(waiting, step: 1, attempt: 1, signal: .heartbeat, receivedAt: later, at: later))
        #expect(beat.state.steps[1].dueAt == later.addingTimeInterval(600))
        #expect(beat.events.map(\.kind) == [.callbackHeartbeat])
        #expect(machine.callbackReceived(beat.state, step: 1, attempt: 1, signal: .heartbeat, receivedAt: later, at: later) == nil, "not newer")

        let missed = machine.waitEnded(beat.state, step: 1, at: later.addingTimeInterval(600))
        expectRunnable(missed.state)
        #expect(missed.state.steps[1].outcomeUnknown)
        #expect(missed.state.failure?.reason == "no callback and no heartbeat within 10m")
        #expect(missed.state.status == .compensating)
        #expect(missed.events.first?.kind == .callbackTimedOut)
        // Charge may have been applied: it is refunded at once (its compensation names it by key), then reserve is released.
        #expect(missed.state.steps.filter { $0.status == .compensating }.map(\.name) == ["charge"])
        #expect(missed.state.steps[1].dueAt == later.addingTimeInterval(600))
    }

    @Test func aCallbackForALostAnswerCountsAndAnOlderAttemptsDoesNot() throws {
        // Attempt 1 timed out (its answer was lost): a retry is due, and attempt 1's callback still says how it ended.
        let lost = machine.finishAttempt(
            charging(), step: 1, outcome: .failed(AttemptFailure(kind: .timeout, reason: "timeout", isRetryable: true)), duration: .zero, at: t0,
            jitterSample: 0
        ).state
        #expect(lost.steps[1].status == .running && lost.steps[1].dueAt != nil)
        let counted = try #require(
            machine.callbackReceived(lost, step: 1, attempt: 1, signal: .succeeded(output: ["chargeId": "ch_1"]), receivedAt: t0, at: t0))
        #expect(counted.state.steps[1].status == .succeeded)
        // Once attempt 2 is sent (with a new token), attempt 1's callback changes nothing.
        let retried = machine.beginAttempt(lost, step: 1, at: t0.addingTimeInterval(1), callbackToken: "T2").state
        #expect(retried.steps[1].wait?.token == "T2")
        #expect(machine.callbackReceived(retried, step: 1, attempt: 1, signal: .succeeded(output: .null), receivedAt: t0, at: t0) == nil)
    }

    @Test func aCancelWhileWaitingUndoesTheAcceptedWorkInCaseItIsDone() throws {
        let cancelled = try #require(machine.cancel(accepted(), reason: "customer left", by: "ana", at: t0))
        expectRunnable(cancelled.state)
        #expect(cancelled.state.steps[1].status == .compensating, "accepted: it may be done, so it is refunded")
        #expect(cancelled.state.steps[1].outcomeUnknown)
    }

    @Test func callbackTemplatesAreCheckedWhereTheyAreWritten() {
        let found = problems(
            """
            { "name": "x", "version": 1, "steps": [
              { "name": "a", "request": { "method": "POST", "url": "http://h/a", "body": { "u": "{{callback.url}}" } } },
              { "name": "b", "callback": { "heartbeat": "1h" }, "request": { "method": "POST", "url": "http://h/b" } },
              { "name": "c", "request": { "method": "POST", "url": "http://h/{{steps.a.callback.output.id}}" } },
              { "name": "d", "callback": { "timeout": "1h" } },
              { "name": "e", "callback": { "timeout": "1h" }, "request": { "method": "POST", "url": "http://h/e" },
                "compensation": { "method": "DELETE", "url": "http://h/e/{{callback.token}}" } }
            ] }
            """)
        let at = { (path: String, text: String) in found.contains { $0.path?.description == path && $0.message.contains(text) } }
        #expect(at("steps[0].request.body.u", "is only known in the request of a step that declares \"callback\""), "\(found)")
        #expect(at("steps[1].callback", "\"timeout\" is required"))
        #expect(at("steps[2].request.url", "which declares no \"callback\""))
        #expect(at("steps[3].callback", "needs one"))
        #expect(at("steps[4].compensation.url", "is only known in the request"))
    }

    @Test func thePlanWaitsForTheCallbackAndItsCompensationReadingTheOutputIsWarnedAbout() throws {
        let plan = Planner.plan(machine.saga)
        #expect(plan.waves == [["reserve"], ["charge"], ["ship"]])
        #expect(plan.steps[1].wait?.kind == .callback && plan.steps[1].wait?.longest == .seconds(7200))
        let reads = try saga(
            """
            { "name": "x", "version": 1, "steps": [ { "name": "a", "callback": { "timeout": "1h" }, "request": { "method": "POST", "url": "http://h/a" },
              "compensation": { "method": "DELETE", "url": "http://h/a/{{steps.a.callback.output.id}}" } } ] }
            """)
        #expect(reads.warnings.contains { $0.path?.description == "steps[0].compensation" }, "\(reads.warnings)")
    }

    @Test func aTimedOutCallbackStepAfterThePivotIsResolvedWithTheOutputLaterStepsRead() throws {
        let after = SagaMachine(
            saga: try saga(
                """
                { "name": "x", "version": 1, "defaults": { "retry": { "maxAttempts": 1 } }, "steps": [
                  { "name": "pay", "pivot": true, "request": { "method": "POST", "url": "http://h/pay" } },
                  { "name": "ship", "callback": { "timeout": "1h" }, "request": { "method": "POST", "url": "http://h/ship" } },
                  { "name": "notify", "request": { "method": "POST", "url": "http://h/n/{{steps.ship.callback.output.tracking}}" } } ] }
                """))
        var state = after.start(runID: "r", at: t0).state
        state = after.beginAttempt(state, step: 0, at: t0).state
        state = after.finishAttempt(state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        state = after.beginAttempt(state, step: 1, at: t0, callbackToken: "T").state
        state = after.finishAttempt(state, step: 1, outcome: .succeeded(StepResponse(status: 202, body: .null)), duration: .zero, at: t0, jitterSample: 0).state
        state = after.waitEnded(state, step: 1, at: t0.addingTimeInterval(3600)).state
        #expect(state.status == .stuck, "past the pivot, an unknown outcome waits for a person")
        #expect(after.stepsReadingResponse(of: 1, in: state) == ["notify"], "notify reads the callback's output")
        #expect(after.resolve(state, step: "ship", note: "booked by phone", by: "ana", at: t0) == nil, "the output later steps read is needed")
        let resolved = try #require(after.resolve(state, step: "ship", note: "booked by phone", by: "ana", response: ["tracking": "T-1"], at: t0))
        #expect(resolved.state.steps[1].wait?.output == ["tracking": "T-1"])
        #expect(resolved.state.steps[2].status == .running)
    }
}

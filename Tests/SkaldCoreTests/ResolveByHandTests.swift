import Foundation
import Testing

@testable import SkaldCore
import SkaldTestSupport

/// An account opening: past the pivot `open`, a card and a welcome mail are sent in parallel, then `notify`
/// reads the card's id.
let accountOpening = """
    { "name": "account", "version": 1, "defaults": { "retry": { "maxAttempts": 1 } }, "steps": [
      { "name": "kyc", "request": { "method": "POST", "url": "http://h/kyc" }, "compensation": { "method": "DELETE", "url": "http://h/kyc" } },
      { "name": "open", "dependsOn": ["kyc"], "pivot": true, "request": { "method": "POST", "url": "http://h/open" } },
      { "name": "card", "dependsOn": ["open"], "request": { "method": "POST", "url": "http://h/card" } },
      { "name": "mail", "dependsOn": ["open"], "request": { "method": "POST", "url": "http://h/mail" } },
      { "name": "notify", "dependsOn": ["card", "mail"], "request": { "method": "POST", "url": "http://h/n/{{steps.card.response.body.cardId}}" } }
    ] }
    """

/// `resolve` on a stuck run: the operator did a failed step's work by hand, and the run goes on from it.
@Suite(.timeLimit(.minutes(10))) struct ResolveByHandTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(accountOpening))
    }

    func run(_ state: RunState, _ step: Int, _ outcome: AttemptOutcome) -> SagaMachine.Transition {
        let begun = machine.beginAttempt(state, step: step, at: t0).state
        return machine.finishAttempt(begun, step: step, outcome: outcome, duration: .zero, at: t0, jitterSample: 0)
    }

    /// kyc and open succeeded; card failed for good and mail succeeded: stuck on card.
    func stuckOnCard() -> RunState {
        var state = machine.start(runID: "r", at: t0).state
        state = run(run(state, 0, .ok).state, 1, .ok).state
        state = run(run(state, 2, .declined).state, 3, .ok).state
        return state
    }

    func expectRunnable(_ state: RunState, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        #expect(machine.problems(in: state).isEmpty, "\(machine.problems(in: state))", sourceLocation: sourceLocation)
    }

    @Test func aStuckStepResolvedByHandLetsTheRunGoOnAndComplete() throws {
        let stuck = stuckOnCard()
        #expect(stuck.status == .stuck)
        #expect(stuck.stuck?.step == "card")
        let resolved = try #require(
            machine.resolve(stuck, step: "card", note: "issued in the back office", by: "ana", response: ["cardId": "C-7"], at: t0))
        #expect(resolved.state.status == .running)
        #expect(resolved.state.stuck == nil)
        #expect(resolved.state.steps[2].status == .resolved)
        #expect(resolved.state.steps[2].resolution == StepResolution(by: "ana", note: "issued in the back office", at: t0))
        #expect(resolved.state.steps[2].response == StepResponse(status: 200, body: ["cardId": "C-7"]))
        #expect(resolved.state.steps[2].lastError == nil)
        #expect(resolved.state.dueSteps(at: t0) == [4], "notify is sent next")
        #expect(resolved.events.map(\.kind) == [.stepResolved])
        #expect(resolved.events[0].message == "ana resolved card by hand: issued in the back office; the run goes on from it")
        #expect(resolved.changedSteps == [2, 4])
        expectRunnable(resolved.state)

        let done = run(resolved.state, 4, .ok)
        #expect(done.state.status == .completed)
        #expect(done.state.steps.map(\.status) == [.succeeded, .succeeded, .resolved, .succeeded, .succeeded])
        #expect(done.events.last?.message == "run completed: all 5 steps done, card by hand")
        expectRunnable(done.state)
    }

    @Test func aStepWhoseResponseLaterStepsReadNeedsOne() throws {
        let stuck = stuckOnCard()
        #expect(machine.stepsReadingResponse(of: 2, in: stuck) == ["notify"])
        #expect(machine.resolve(stuck, step: "card", note: "issued", at: t0) == nil, "notify reads card's response")
        #expect(machine.stepsReadingResponse(of: 3, in: stuck).isEmpty)
    }

    @Test func aReferenceWithADefaultNeedsNoResponse() throws {
        let machine = SagaMachine(
            saga: try saga(
                accountOpening.replacingOccurrences(
                    of: #""url": "http://h/n/{{steps.card.response.body.cardId}}""#,
                    with: #""url": "http://h/n", "body": { "card": "{{steps.card.response.body.cardId ?? \"none\"}}" }"#)))
        var state = machine.start(runID: "r", at: t0).state
        for (step, outcome) in [(0, AttemptOutcome.ok), (1, .ok), (2, .declined), (3, .ok)] {
            state = machine.finishAttempt(machine.beginAttempt(state, step: step, at: t0).state, step: step, outcome: outcome, duration: .zero, at: t0, jitterSample: 0).state
        }
        #expect(machine.stepsReadingResponse(of: 2, in: state).isEmpty)
        let resolved = try #require(machine.resolve(state, step: "card", note: "issued", at: t0))
        #expect(resolved.state.steps[2].response == nil)
        #expect(resolved.state.dueSteps(at: t0) == [4])
    }

    @Test func withTwoFailedStepsTheRunStaysStuckOnTheOtherOne() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = run(run(state, 0, .ok).state, 1, .ok).state
        state = run(run(state, 2, .declined).state, 3, .declined).state
        #expect(state.status == .stuck)
        let first = try #require(machine.resolve(state, step: "mail", note: "sent by hand", at: t0))
        #expect(first.state.status == .stuck)
        #expect(first.state.stuck?.step == "card")
        #expect(first.events.map(\.kind) == [.stepResolved, .runStuck])
        #expect(first.events[1].message.contains("skald resolve r --step card"))
        expectRunnable(first.state)
        let second = try #require(machine.resolve(first.state, step: "card", note: "issued", response: ["cardId": "C-1"], at: t0))
        #expect(second.state.status == .running)
        #expect(second.state.dueSteps(at: t0) == [4])
    }

    @Test func thePivotWhoseOutcomeIsUnknownCanBeRecordedAsApplied() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = run(state, 0, .ok).state
        let stuck = run(state, 1, .timedOut)
        state = stuck.state
        #expect(state.status == .stuck)
        #expect(stuck.events.last?.message.contains("record that it was applied (skald resolve r --step open") == true)
        let resolved = try #require(machine.resolve(state, step: "open", note: "the account exists at the core bank", by: "ana", at: t0))
        #expect(resolved.state.steps[1].status == .resolved)
        #expect(resolved.state.steps[1].outcomeUnknown == false)
        #expect(machine.isPastPivot(resolved.state))
        #expect(resolved.events.map(\.kind) == [.stepResolved, .pivotPassed])
        #expect(resolved.state.dueSteps(at: t0) == [2, 3])
        #expect(machine.cancel(resolved.state, reason: "", at: t0) == nil, "past the pivot now")
        expectRunnable(resolved.state)
    }

    @Test func aCompensationResolvedByHandTakesNoResponse() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = run(state, 0, .ok).state
        state = run(state, 1, .declined).state
        state = run(state, 0, .declined).state
        #expect(state.status == .compensationFailed)
        #expect(machine.resolve(state, step: "kyc", note: "x", response: ["id": 1], at: t0) == nil)
        #expect(machine.resolve(state, step: "kyc", note: "x", at: t0)?.state.steps[0].status == .compensationResolved)
    }

    @Test func onlyAFailedStepOfAStuckRunOrAFailedCompensationCanBeResolved() throws {
        let stuck = stuckOnCard()
        #expect(machine.resolve(stuck, step: "mail", note: "x", response: .null, at: t0) == nil, "mail succeeded")
        #expect(machine.resolve(stuck, step: "nope", note: "x", at: t0) == nil)
        let running = machine.start(runID: "r", at: t0).state
        #expect(machine.resolve(running, step: "kyc", note: "x", at: t0) == nil)
        // Before the pivot a failure compensates: nothing is stuck, so nothing is resolved forward.
        let compensating = run(run(running, 0, .ok).state, 1, .declined).state
        #expect(compensating.status == .compensating)
        #expect(machine.resolve(compensating, step: "open", note: "x", at: t0) == nil)
    }

    @Test func abandoningAfterAResolveListsTheStepsStillApplied() throws {
        let saga = try saga(accountOpening)
        var state = stuckOnCard()
        state.steps[2].status = .resolved
        #expect(SagaMachine.notUndone(state, saga: saga) == ["kyc"], "card declares no compensation")
        state.steps[0].status = .resolved
        #expect(SagaMachine.notUndone(state, saga: saga) == ["kyc"], "a step done by hand is applied, like a succeeded one")
    }
}

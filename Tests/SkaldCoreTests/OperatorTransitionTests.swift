import Foundation
import Testing
@testable import SkaldCore
import SkaldTestSupport

/// Cancel and retry: the operator's transitions, with plain values.
@Suite(.timeLimit(.minutes(10))) struct OperatorTransitionTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(threeSteps))
    }

    func attempt(_ state: RunState, _ step: Int, _ outcome: AttemptOutcome) -> RunState {
        let begun = machine.beginAttempt(state, step: step, at: t0).state
        return machine.finishAttempt(begun, step: step, outcome: outcome, duration: .zero, at: t0, jitterSample: 0).state
    }

    @Test func cancelWhileAStepWaitsForARetryCompensatesTheCompletedSteps() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok)
        state = attempt(state, 1, .unavailable)
        #expect(state.steps[1].dueAt != nil)
        let cancelled = try #require(machine.cancel(state, reason: "customer changed their mind", at: t0))
        #expect(cancelled.state.status == .compensating)
        #expect(cancelled.state.steps.map(\.status) == [.compensating, .failed, .pending])
        #expect(cancelled.state.failure?.reason == "cancelled by an operator: customer changed their mind")
        #expect(cancelled.events.map(\.kind) == [.runCancelled, .compensationStarted])
        #expect(cancelled.state.dueSteps(at: t0) == [0])
    }

    @Test func cancelWaitsForTheAttemptInFlightAndCompensatesItIfItSucceeded() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok)
        state = machine.beginAttempt(state, step: 1, at: t0).state
        let cancelled = try #require(machine.cancel(state, reason: "", at: t0))
        // a may not be undone while b's attempt might still take effect.
        #expect(cancelled.state.steps.map(\.status) == [.succeeded, .running, .pending])
        #expect(cancelled.state.dueSteps(at: t0).isEmpty)
        let finished = machine.finishAttempt(cancelled.state, step: 1, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        #expect(finished.steps.map(\.status) == [.succeeded, .compensating, .pending])
        let undone = attempt(attempt(finished, 1, .ok), 0, .ok)
        #expect(undone.status == .compensated)
    }

    @Test func aFailedAttemptInFlightIsNotRetriedAfterCancel() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = machine.beginAttempt(state, step: 0, at: t0).state
        let cancelled = try #require(machine.cancel(state, reason: "", at: t0)).state
        let finished = machine.finishAttempt(cancelled, step: 0, outcome: .unavailable, duration: .zero, at: t0, jitterSample: 0)
        #expect(finished.state.status == .compensated)
        #expect(finished.state.steps[0].status == .failed)
    }

    @Test func cancelIsRefusedUnlessTheRunIsRunning() {
        let done = attempt(machine.start(runID: "r", at: t0).state, 0, .declined)
        #expect(done.status == .compensated)
        #expect(machine.cancel(done, reason: "", at: t0) == nil)
    }

    @Test func retryRunsTheFailedCompensationAgainWithAFreshBudgetThenContinues() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok)
        state = attempt(state, 1, .declined)
        // a's compensation allows 2 attempts; both fail.
        state = attempt(state, 0, .unavailable)
        state = attempt(state.settingDue(0, to: t0), 0, .unavailable)
        #expect(state.status == .compensationFailed)
        #expect(machine.retryCompensation(machine.start(runID: "x", at: t0).state, at: t0) == nil)

        let retried = try #require(machine.retryCompensation(state, at: t0))
        #expect(retried.state.status == .compensating)
        #expect(retried.state.compensationFailure == nil)
        #expect(retried.state.dueSteps(at: t0) == [0])
        #expect(retried.events.map(\.kind) == [.compensationRetried])
        // What the operator said is kept in the history.
        let noted = try #require(machine.retryCompensation(state, by: "ana", note: "the refund service is back", at: t0))
        #expect(noted.events[0].message == "ana retried the compensation of a: the refund service is back")
        #expect(noted.events[0].data["note"] == "the refund service is back")
        // A fresh budget: one more failure is retried rather than final.
        let again = attempt(retried.state, 0, .unavailable)
        #expect(again.status == .compensating)
        #expect(again.steps[0].compensationAttempts == 3)
        let done = attempt(again.settingDue(0, to: t0), 0, .ok)
        #expect(done.status == .compensated)
    }
}

/// `abandon`: an operator stops a run without undoing anything more; nothing is sent after it.
@Suite(.timeLimit(.minutes(10))) struct AbandonTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(threeSteps))
    }

    func attempt(_ state: RunState, _ step: Int, _ outcome: AttemptOutcome) -> RunState {
        let begun = machine.beginAttempt(state.settingDue(step, to: t0), step: step, at: t0).state
        return machine.finishAttempt(begun, step: step, outcome: outcome, duration: .zero, at: t0, jitterSample: 0).state
    }

    @Test func aRunningRunStopsWithNothingDueAndTheNoteInItsHistory() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok)
        state = attempt(state, 1, .unavailable)  // b waits to retry
        let abandoned = try #require(machine.abandon(state, by: "ana", note: "settled by phone", at: t0))
        #expect(abandoned.state.status == .abandoned)
        #expect(abandoned.state.nextDueAt == nil)
        #expect(abandoned.state.steps.map(\.status) == [.succeeded, .failed, .pending])
        #expect(abandoned.events.map(\.kind) == [.runAbandoned])
        #expect(abandoned.events[0].message == "ana abandoned the run: settled by phone; nothing more is sent or undone")
        #expect(abandoned.events[0].data["note"] == "settled by phone")
        #expect(machine.abandon(abandoned.state, note: "again", at: t0) == nil)
        #expect(machine.cancel(abandoned.state, reason: "", at: t0) == nil)
    }

    @Test func anAttemptInFlightIsRecordedButSchedulesNothing() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok)
        state = machine.beginAttempt(state, step: 1, at: t0).state
        let abandoned = try #require(machine.abandon(state, note: "done by hand", at: t0))
        #expect(abandoned.events[0].message.contains("the attempt in flight of b finishes and is recorded"))
        let failed = machine.finishAttempt(abandoned.state, step: 1, outcome: .unavailable, duration: .zero, at: t0, jitterSample: 0)
        #expect(failed.state.status == .abandoned)
        #expect(failed.state.nextDueAt == nil, "no retry after an abandon")
        #expect(failed.events.first?.message.contains("no retry: the run was abandoned") == true)
        let succeeded = machine.finishAttempt(abandoned.state, step: 1, outcome: .ok, duration: .zero, at: t0, jitterSample: 0)
        #expect(succeeded.state.status == .abandoned)
        #expect(succeeded.state.steps[2].status == .pending, "the next step does not start")
    }

    @Test func aCompensationFailedRunCanBeAbandonedAndSaysWhatIsLeft() throws {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok)
        state = attempt(state, 1, .ok)
        state = attempt(state, 2, .declined)
        state = attempt(state, 1, .declined)  // b's compensation fails for good
        #expect(state.status == .compensationFailed)
        let abandoned = try #require(machine.abandon(state, by: "", note: "refunded by hand", at: t0))
        #expect(abandoned.state.status == .abandoned)
        // b, whose undo failed, is still applied, and so is a, whose undo never started; c has no compensation.
        #expect(abandoned.events[0].message == "an operator abandoned the run: refunded by hand; nothing more is sent or undone; not undone: a, b")
    }

    @Test func aFinishedRunCannotBeAbandoned() {
        var state = machine.start(runID: "r", at: t0).state
        for step in 0..<3 { state = attempt(state, step, .ok) }
        #expect(state.status == .completed)
        #expect(machine.abandon(state, note: "x", at: t0) == nil)
    }
}

import Foundation
import Testing
@testable import SkaldCore
import SkaldTestSupport

/// Drives the pure machine with plain values: every transition, no I/O, no clock.
@Suite(.timeLimit(.minutes(10))) struct SagaMachineTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(threeSteps))
    }

    /// Sends the due attempt of `step` and finishes it with `outcome` at `at`.
    func attempt(_ state: RunState, _ step: Int, _ outcome: AttemptOutcome, at: Date = t0, jitter: Double = 0.5)
        -> SagaMachine.Transition
    {
        let begun = machine.beginAttempt(state, step: step, at: at)
        return machine.finishAttempt(begun.state, step: step, outcome: outcome, duration: .milliseconds(5), at: at, jitterSample: jitter)
    }

    func statuses(_ state: RunState) -> [StepStatus] { state.steps.map(\.status) }

    @Test func startMakesTheFirstStepDue() {
        let start = machine.start(runID: "r", at: t0)
        #expect(start.state.status == .running)
        #expect(statuses(start.state) == [.running, .pending, .pending])
        #expect(start.state.dueSteps(at: t0) == [0])
        #expect(start.events.map(\.kind) == [.runStarted])
    }

    @Test func beginAttemptCountsAndMarksInFlight() {
        let begun = machine.beginAttempt(machine.start(runID: "r", at: t0).state, step: 0, at: t0)
        #expect(begun.state.steps[0].attempts == 1)
        #expect(begun.state.steps[0].isInFlight)
        #expect(begun.state.dueSteps(at: .distantFuture).isEmpty)
        #expect(begun.events.map(\.kind) == [.attemptStarted])
        #expect(begun.events[0].attempt == 1)
    }

    /// A store writes only the steps a transition names, so each must name every step it changed, and no other.
    @Test func transitionsNameTheStepsTheyChanged() {
        let start = machine.start(runID: "r", at: t0)
        #expect(start.changedSteps == nil, "a new run writes every step")
        let begun = machine.beginAttempt(start.state, step: 0, at: t0)
        #expect(begun.changedSteps == [0])
        #expect(machine.resendInterruptedAttempt(begun.state, step: 0, at: t0).changedSteps == [])
        let finished = machine.finishAttempt(begun.state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0)
        #expect(finished.changedSteps == [0, 1], "step 0 succeeded and step 1 became due")
        let cancelled = machine.cancel(finished.state, reason: "", at: t0)
        #expect(cancelled?.changedSteps == [0, 1], "step 1 no longer due, step 0 to be compensated")
    }

    @Test func happyPathRunsStepsInOrderAndCompletes() {
        var state = machine.start(runID: "r", at: t0).state
        var kinds: [RunEvent.Kind] = []
        for step in 0..<3 {
            #expect(state.dueSteps(at: t0) == [step])
            let transition = attempt(state, step, .ok)
            state = transition.state
            kinds += transition.events.map(\.kind)
        }
        #expect(state.status == .completed)
        #expect(statuses(state) == [.succeeded, .succeeded, .succeeded])
        #expect(state.steps[0].response == .ok())
        #expect(kinds.last == .runCompleted)
        #expect(state.nextDueAt == nil)
    }

    @Test func retryableFailureSchedulesTheNextAttemptWithBackoff() {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .unavailable, at: t0).state
        #expect(state.status == .running)
        #expect(state.steps[0].status == .running)
        #expect(state.steps[0].dueAt == t0.addingTimeInterval(1))
        #expect(state.steps[0].lastError == "HTTP 503")
        #expect(state.dueSteps(at: t0.addingTimeInterval(0.999)).isEmpty)
        let second = attempt(state, 0, .unavailable, at: t0.addingTimeInterval(1))
        #expect(second.state.steps[0].dueAt == t0.addingTimeInterval(3))
        #expect(second.events.last?.data["retryInMs"] == 2000)
        let third = attempt(second.state, 0, .ok, at: t0.addingTimeInterval(3))
        #expect(third.state.steps[0].status == .succeeded)
        #expect(third.state.steps[0].attempts == 3)
        #expect(third.state.steps[0].lastError == nil)
    }

    @Test func exhaustedRetriesFailTheStepAndCompensateInReverse() {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok).state
        state = attempt(state, 1, .ok).state
        for _ in 1...3 { state = attempt(state, 2, .unavailable).state.settingDue(2, to: t0) }
        #expect(state.status == .compensating)
        #expect(state.failure == RunFailure(step: "c", reason: "HTTP 503"))
        #expect(statuses(state) == [.succeeded, .compensating, .failed])
        #expect(state.dueSteps(at: t0) == [1])
        state = attempt(state, 1, .ok).state
        #expect(statuses(state) == [.compensating, .compensated, .failed])
        let last = attempt(state, 0, .ok)
        #expect(last.state.status == .compensated)
        #expect(statuses(last.state) == [.compensated, .compensated, .failed])
        #expect(last.events.map(\.kind) == [.attemptSucceeded, .stepCompensated, .runCompensated])
    }

    @Test func permanentFailureIsNotRetried() {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok).state
        let failed = attempt(state, 1, .declined)
        #expect(failed.state.steps[1].attempts == 1)
        #expect(failed.state.steps[1].status == .failed)
        #expect(failed.state.status == .compensating)
        #expect(failed.events.map(\.kind) == [.attemptFailed, .stepFailed, .compensationStarted])
        #expect(failed.events[0].data["retryable"] == false)
        #expect(failed.events[2].data["order"] == ["a"])
    }

    @Test func failureOfTheFirstStepCompensatesNothing() {
        let failed = attempt(machine.start(runID: "r", at: t0).state, 0, .declined)
        #expect(failed.state.status == .compensated)
        #expect(statuses(failed.state) == [.failed, .pending, .pending])
        #expect(failed.events.last?.kind == .runCompensated)
    }

    @Test func compensationRetriesThenFailsForGoodAndStops() {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok).state
        state = attempt(state, 1, .ok).state
        state = attempt(state, 2, .declined).state
        // b's compensation fails permanently: a must not be compensated, the run waits for a person.
        let failed = attempt(state, 1, .declined)
        #expect(failed.state.status == .compensationFailed)
        #expect(statuses(failed.state) == [.succeeded, .compensationFailed, .failed])
        #expect(failed.state.compensationFailure == RunFailure(step: "b", reason: "HTTP 402"))
        #expect(failed.events.map(\.kind) == [.attemptFailed, .compensationFailed, .runCompensationFailed])
        #expect(failed.state.nextDueAt == nil)
    }

    @Test func compensationExhaustsItsOwnRetryPolicy() {
        var state = machine.start(runID: "r", at: t0).state
        state = attempt(state, 0, .ok).state
        state = attempt(state, 1, .declined).state
        // a's compensation allows 2 attempts (its own retry policy).
        state = attempt(state, 0, .unavailable).state
        #expect(state.steps[0].status == .compensating)
        #expect(state.steps[0].dueAt != nil)
        state = attempt(state.settingDue(0, to: t0), 0, .unavailable).state
        #expect(state.status == .compensationFailed)
        #expect(state.steps[0].compensationAttempts == 2)
    }

    @Test func stepsWithoutCompensationAreSkipped() throws {
        let machine = SagaMachine(saga: try saga("""
            { "name": "x", "version": 1, "defaults": { "retry": { "maxAttempts": 1 } }, "steps": [
              { "name": "a", "request": { "method": "POST", "url": "http://h/a" }, "compensation": { "method": "DELETE", "url": "http://h/a" } },
              { "name": "notify", "request": { "method": "POST", "url": "http://h/n" } },
              { "name": "c", "request": { "method": "POST", "url": "http://h/c" } } ] }
            """))
        var state = machine.start(runID: "r", at: t0).state
        for (step, outcome) in [(0, AttemptOutcome.ok), (1, .ok), (2, .unavailable)] {
            state = machine.finishAttempt(
                machine.beginAttempt(state, step: step, at: t0).state, step: step, outcome: outcome, duration: .zero, at: t0, jitterSample: 0
            ).state
        }
        #expect(state.steps.map(\.status) == [.compensating, .compensationSkipped, .failed])
        #expect(state.dueSteps(at: t0) == [0])
    }

    @Test func retryAfterFromTheParticipantDelaysTheRetry() {
        let state = machine.start(runID: "r", at: t0).state
        let throttled = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 429", isRetryable: true, retryAfter: .seconds(7)))
        #expect(attempt(state, 0, throttled).state.steps[0].dueAt == t0.addingTimeInterval(7))
    }

    @Test func jitterComesFromTheCallersSample() throws {
        let jittery = SagaMachine(saga: try saga("""
            { "name": "x", "version": 1, "defaults": { "retry": { "initialInterval": "1s", "jitter": "full" } },
              "steps": [ { "name": "a", "request": { "method": "GET", "url": "http://h/a" } } ] }
            """))
        let state = jittery.start(runID: "r", at: t0).state
        let begun = jittery.beginAttempt(state, step: 0, at: t0).state
        let quarter = jittery.finishAttempt(begun, step: 0, outcome: .unavailable, duration: .zero, at: t0, jitterSample: 0.25)
        #expect(quarter.state.steps[0].dueAt == t0.addingTimeInterval(0.25))
    }

    @Test func resendingAnInterruptedAttemptKeepsItsNumber() {
        let begun = machine.beginAttempt(machine.start(runID: "r", at: t0).state, step: 0, at: t0)
        let resent = machine.resendInterruptedAttempt(begun.state, step: 0, at: t0.addingTimeInterval(60))
        #expect(resent.state == begun.state)
        #expect(resent.events.map(\.kind) == [.attemptResent])
        #expect(resent.events[0].attempt == 1)
        let finished = machine.finishAttempt(resent.state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0)
        #expect(finished.state.steps[0].attempts == 1)
        #expect(finished.state.steps[0].status == .succeeded)
    }
}

extension RunState {
    /// Makes a scheduled retry due at `date` (tests skip the wait without a clock).
    func settingDue(_ step: Int, to date: Date) -> RunState {
        var copy = self
        if copy.steps[step].dueAt != nil { copy.steps[step].dueAt = date }
        return copy
    }
}

import Foundation
import Testing
@testable import SkaldCore
import SkaldTestSupport

extension AttemptOutcome {
    /// The attempt's deadline passed: the participant may have applied the request.
    static let timedOut = AttemptOutcome.failed(AttemptFailure(kind: .timeout, reason: "no complete response within 1s", isRetryable: true))
    /// The connection was refused: the request never left.
    static let refused = AttemptOutcome.failed(
        AttemptFailure(kind: .transport, reason: "connection refused by h:1", isRetryable: true, mayHaveApplied: false))
    /// The connection broke after the request was sent.
    static let reset = AttemptOutcome.failed(AttemptFailure(kind: .transport, reason: "the participant closed the connection", isRetryable: true))
}

/// A step whose outcome is unknown (no answer came, but the request may have been applied) is compensated like a
/// completed one, unless it opts out; a pivot whose outcome is unknown stops the run for a person.
@Suite(.timeLimit(.minutes(10))) struct UnknownOutcomeTests {
    /// reserve → charge → ship; ship names its shipment by its idempotency key, charge by the response it got.
    static let checkout = """
        { "name": "checkout", "version": 1,
          "defaults": { "retry": { "maxAttempts": 2, "initialInterval": "1s", "jitter": "none" } },
          "steps": [
            { "name": "reserve", "request": { "method": "POST", "url": "http://h/r" },
              "compensation": { "method": "DELETE", "url": "http://h/r/{{steps.reserve.idempotencyKey}}" } },
            { "name": "charge", "request": { "method": "POST", "url": "http://h/c" },
              "compensation": { "method": "POST", "url": "http://h/c/{{steps.charge.response.body.id}}/refund" } },
            { "name": "ship", "request": { "method": "POST", "url": "http://h/s" },
              "compensation": { "method": "DELETE", "url": "http://h/s/{{steps.ship.idempotencyKey}}" } }
          ] }
        """

    func machine(_ text: String = checkout) throws -> SagaMachine { SagaMachine(saga: try saga(text)) }

    func run(_ machine: SagaMachine, _ state: RunState, _ step: Int, _ outcome: AttemptOutcome) -> SagaMachine.Transition {
        var state = state
        if state.steps[step].dueAt != nil { state = state.settingDue(step, to: t0) }
        let begun = machine.beginAttempt(state, step: step, at: t0).state
        return machine.finishAttempt(begun, step: step, outcome: outcome, duration: .seconds(1), at: t0, jitterSample: 0)
    }

    /// Runs reserve and charge to success, then gives `ship` the outcomes in turn.
    func shipping(_ machine: SagaMachine, _ outcomes: [AttemptOutcome]) -> (RunState, [RunEvent]) {
        var state = machine.start(runID: "r", at: t0).state
        state = run(machine, run(machine, state, 0, .ok).state, 1, .ok).state
        var events: [RunEvent] = []
        for outcome in outcomes {
            let transition = run(machine, state, 2, outcome)
            state = transition.state
            events += transition.events
        }
        return (state, events)
    }

    @Test func aStepThatTimedOutForGoodIsCompensatedFirstThenTheCompletedOnes() throws {
        let machine = try machine()
        let (state, events) = shipping(machine, [.timedOut, .timedOut])
        #expect(state.status == .compensating)
        #expect(state.steps[2].outcomeUnknown)
        #expect(state.steps.map(\.status) == [.succeeded, .succeeded, .compensating])
        #expect(state.dueSteps(at: t0) == [2], "the unknown step is undone first: the others wait for it")
        let failed = try #require(events.first { $0.kind == .stepFailed })
        #expect(failed.message.contains("its outcome is unknown (no answer before the timeout): it may have been applied, so it is undone in case it was"))
        #expect(failed.data["outcome"] == "unknown")
        let started = try #require(events.first { $0.kind == .compensationStarted })
        #expect(started.data["order"] == ["ship", "charge", "reserve"])
        #expect(started.message.contains("ship (outcome unknown), charge, reserve"))

        // Compensating all three ends the run compensated, the unknown step included.
        var current = state
        for step in [2, 1, 0] {
            current = run(machine, current, step, .ok).state
        }
        #expect(current.status == .compensated)
        #expect(current.steps.map(\.status) == [.compensated, .compensated, .compensated])
    }

    @Test func aRefusalIsNotCompensatedAndNeitherIsARequestThatNeverLeft() throws {
        let machine = try machine()
        for outcomes in [[AttemptOutcome.declined], [.refused, .refused], [.unavailable, .unavailable]] {
            let (state, _) = shipping(machine, outcomes)
            #expect(state.steps[2].status == .failed, "\(outcomes)")
            #expect(!state.steps[2].outcomeUnknown)
            #expect(state.dueSteps(at: t0) == [1], "only charge is undone first")
        }
    }

    @Test func anEarlierAttemptWithoutAnswerKeepsTheOutcomeUnknownAfterALaterRefusal() throws {
        let machine = try machine()
        let (state, _) = shipping(machine, [.reset, .unavailable])
        #expect(state.steps[2].status == .compensating)
        let (succeeded, _) = shipping(machine, [.timedOut, .ok])
        #expect(succeeded.status == .completed)
        #expect(!succeeded.steps[2].outcomeUnknown, "an answer settled it")
    }

    @Test func compensateUnknownFalseLeavesTheStepAsItIsAndSaysSo() throws {
        let machine = try machine(Self.checkout.replacingOccurrences(of: #"{ "name": "ship", "#, with: #"{ "name": "ship", "compensateUnknown": false, "#))
        let (state, events) = shipping(machine, [.timedOut, .timedOut])
        #expect(state.steps[2].status == .outcomeUnknown)
        #expect(state.dueSteps(at: t0) == [1])
        #expect(events.contains { $0.message.contains("compensateUnknown is false, so it is not undone: check it at the participant") })
        var current = state
        for step in [1, 0] { current = run(machine, current, step, .ok).state }
        #expect(current.status == .compensated)
        #expect(current.steps[2].status == .outcomeUnknown)
    }

    @Test func aCompensationThatNeedsTheMissingResponseFailsAtOnceAndSaysWhatToDo() throws {
        // charge's refund names the charge by the id in its response, which never came.
        let machine = try machine()
        var state = machine.start(runID: "r", at: t0).state
        state = run(machine, state, 0, .ok).state
        state = run(machine, state, 1, .timedOut).state
        let transition = run(machine, state, 1, .timedOut)
        state = transition.state
        #expect(state.steps[1].status == .compensationFailed)
        #expect(state.steps[0].status == .succeeded, "the walk halts: reserve is not undone before a person acts")
        #expect(state.status == .compensationFailed)
        #expect(state.compensationFailure?.step == "charge")
        #expect(state.compensationFailure?.reason.contains("reads {{steps.charge.response…}}, which never came") == true)
        #expect(transition.events.contains { $0.kind == .compensationFailed && $0.message.contains("cannot be sent") })
        // The operator checked by hand: nothing was charged. Resolving lets the walk go on.
        let resolved = try #require(machine.resolve(state, step: "charge", note: "no charge found", by: "ana", at: t0))
        #expect(resolved.state.dueSteps(at: t0) == [0])
    }

    @Test func aStepWaitingToRetryAfterATimeoutIsCompensatedWhenTheRunTurnsBack() throws {
        let machine = try machine(diamond.replacingOccurrences(of: "\"maxAttempts\": 1", with: "\"maxAttempts\": 3"))
        var state = machine.start(runID: "r", at: t0).state
        state = run(machine, state, 0, .ok).state
        state = run(machine, state, 1, .timedOut).state  // b waits to retry
        #expect(state.steps[1].dueAt != nil)
        state = run(machine, state, 2, .declined).state  // c refuses: the run turns back
        #expect(state.status == .compensating)
        #expect(state.steps[1].status == .compensating, "b may have been applied by its first attempt")
        #expect(state.steps[2].status == .failed)
    }

    @Test func aCancelDuringAnAttemptThatThenTimesOutCompensatesIt() throws {
        let machine = try machine()
        var state = machine.start(runID: "r", at: t0).state
        state = run(machine, run(machine, state, 0, .ok).state, 1, .ok).state
        state = machine.beginAttempt(state, step: 2, at: t0).state
        state = try #require(machine.cancel(state, reason: "customer", at: t0)).state
        state = machine.finishAttempt(state, step: 2, outcome: .timedOut, duration: .seconds(1), at: t0, jitterSample: 0).state
        #expect(state.steps[2].status == .compensating, "no retry while compensating, and the outcome is unknown")
    }

    // MARK: - The pivot

    func pivotSaga(compensateUnknown: Bool = true) throws -> SagaMachine {
        try machine(compensateUnknown ? trip : trip.replacingOccurrences(of: #""pivot": true,"#, with: #""pivot": true, "compensateUnknown": false,"#))
    }

    func atThePivot(_ machine: SagaMachine) -> RunState {
        let state = machine.start(runID: "r", at: t0).state
        return run(machine, run(machine, state, 0, .ok).state, 1, .ok).state
    }

    @Test func aPivotWhoseOutcomeIsUnknownStopsTheRunForAPerson() throws {
        let machine = try pivotSaga()
        var state = run(machine, atThePivot(machine), 2, .timedOut).state
        #expect(state.steps[2].dueAt != nil, "retried first, with the same key")
        #expect(machine.cancel(state, reason: "", at: t0) == nil, "the payment may have been taken")
        #expect(machine.deadlinePassed(state, at: t0.addingTimeInterval(3600)) == nil, "nor does the deadline turn it back")
        #expect(machine.nextWakeAt(state) == state.steps[2].dueAt, "and the driver does not wake for the deadline")
        let transition = run(machine, state, 2, .timedOut)
        state = transition.state
        #expect(state.status == .stuck)
        #expect(state.steps[2].status == .outcomeUnknown)
        #expect(state.steps[0].status == .succeeded && state.steps[1].status == .succeeded, "nothing is undone")
        #expect(transition.events.last?.kind == .runStuck)
        #expect(transition.events.last?.message.contains("the outcome of the pivot pay is unknown") == true)

        // Resume asks again with the same key: the participant's answer decides.
        let resumed = try #require(machine.resume(state, by: "ana", at: t0))
        #expect(run(machine, resumed.state, 2, .ok).state.steps[3].status == .running)
        // Or the operator found the payment was never taken, and cancels: the bookings are undone.
        let cancelled = try #require(machine.cancel(state, reason: "no payment at the bank", at: t0))
        #expect(cancelled.state.status == .compensating)
        #expect(cancelled.state.stuck == nil)
        #expect(cancelled.state.dueSteps(at: t0) == [0, 1])
    }

    @Test func aPivotThatOptsOutCountsAnUnknownOutcomeAsARefusal() throws {
        let machine = try pivotSaga(compensateUnknown: false)
        var state = run(machine, atThePivot(machine), 2, .timedOut).state
        #expect(machine.cancel(state, reason: "", at: t0) != nil)
        state = run(machine, state, 2, .timedOut).state
        #expect(state.status == .compensating)
        #expect(state.steps[2].status == .outcomeUnknown)
        #expect(state.dueSteps(at: t0) == [0, 1])
    }

    @Test func theDeadlineWaitsForThePivotInFlight() throws {
        let machine = try pivotSaga()
        let paying = machine.beginAttempt(atThePivot(machine), step: 2, at: t0).state
        #expect(machine.deadlinePassed(paying, at: t0.addingTimeInterval(3600)) == nil)
        #expect(machine.nextWakeAt(paying) == nil)
    }

    @Test func thePlanShowsWhatAnUnknownOutcomeChanges() throws {
        let plan = Planner.plan(try saga(Self.checkout), failAt: ["ship"])
        #expect(plan.failures[0].compensationWaves == [["charge"], ["reserve"]])
        #expect(plan.failures[0].ifOutcomeUnknown.compensationWaves == [["ship"], ["charge"], ["reserve"]])
        let pivot = Planner.plan(try saga(trip), failAt: ["pay"]).failures[0]
        #expect(pivot.outcome == .compensated)
        #expect(pivot.ifOutcomeUnknown.outcome == .stuck)
        #expect(pivot.ifOutcomeUnknown.stuckStep == "pay")
    }

    // MARK: - Definitions

    @Test func compensateUnknownAndIdempotencyKeyReferencesAreValidated() {
        let found = problems("""
            { "name": "x", "version": 1, "steps": [
              { "name": "a", "compensateUnknown": "no", "request": { "method": "POST", "url": "http://h/a" },
                "compensation": { "method": "DELETE", "url": "http://h/a/{{steps.b.idempotencyKey}}/{{steps.aa.idempotencyKey}}" } },
              { "name": "b", "request": { "method": "POST", "url": "http://h/b/{{steps.a.idempotencyKey}}" } }
            ] }
            """)
        #expect(found.map(\.path?.description) == ["steps[0].compensateUnknown", "steps[0].compensation.url"])
        #expect(found[0].message.contains("must be true or false"))
        #expect(found[1].message.contains("\"aa\", which does not exist; did you mean \"a\"?"))
    }

    @Test func theIdempotencyKeyReferenceRendersTheForwardKey() throws {
        let context = TemplateContext(input: .object([:]), runID: "01RUN", env: [:], responses: [:])
        let url = try TemplateString(parsing: "http://h/s/{{steps.ship.idempotencyKey}}")
        #expect(try context.render(url, encodingForURL: true) == "http://h/s/01RUN%3Aship%3Aforward")
        #expect(IdempotencyKey.of(runID: "01RUN", step: "ship", phase: .forward) == "01RUN:ship:forward")
    }
}

import Foundation
import Testing

@testable import SkaldCore
import SkaldTestSupport

/// A refund: reserve the money, wait for a manager over the limit, hold it 15 minutes, then pay out.
let refundWithApproval = """
    { "name": "refund", "version": 1, "defaults": { "retry": { "maxAttempts": 1 } }, "steps": [
      { "name": "reserve", "request": { "method": "POST", "url": "http://h/reserve" },
        "compensation": { "method": "DELETE", "url": "http://h/reserve/{{steps.reserve.response.body.id}}" } },
      { "name": "approve", "approval": { "timeout": "48h", "prompt": "Refund {{input.amount}} EUR to {{input.customer}}?" } },
      { "name": "hold", "sleep": "15m" },
      { "name": "pay", "request": { "method": "POST", "url": "http://h/pay" } }
    ] }
    """

/// Approvals and sleeps: the step waits as state (`waiting`, with the time its wait ends as `dueAt`), and a person's
/// decision, the timeout or the sleep's end moves it on.
@Suite(.timeLimit(.minutes(10))) struct WaitStepTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(refundWithApproval))
    }

    func expectRunnable(_ state: RunState, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        #expect(machine.problems(in: state).isEmpty, "\(machine.problems(in: state))", sourceLocation: sourceLocation)
    }

    /// reserve succeeded; approve is due.
    func reserved() -> RunState {
        let state = machine.start(runID: "r", at: t0).state
        let begun = machine.beginAttempt(state, step: 0, at: t0).state
        return machine.finishAttempt(begun, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
    }

    func waitingForApproval() -> RunState {
        let wait = StepWait(kind: .approval, since: t0, until: t0.addingTimeInterval(48 * 3600), prompt: "Refund 600 EUR to ana?")
        return machine.beginWait(reserved(), step: 1, wait: wait, at: t0).state
    }

    @Test func anApprovalWaitsAsStateAndAnApprovalLetsTheRunGoOn() throws {
        let due = reserved()
        #expect(due.steps[1].status == .running)
        #expect(due.steps[1].dueAt == t0)
        let waiting = waitingForApproval()
        expectRunnable(waiting)
        #expect(waiting.steps[1].status == .waiting)
        #expect(waiting.steps[1].dueAt == t0.addingTimeInterval(48 * 3600), "the timeout is the step's due time: the state schedules it")
        #expect(waiting.inFlightSteps.isEmpty, "a wait is not an attempt")
        #expect(machine.nextWakeAt(waiting) == t0.addingTimeInterval(48 * 3600))
        #expect(machine.awaitingDecision(waiting) == [1])

        let later = t0.addingTimeInterval(3600)
        let approved = try #require(machine.decide(waiting, step: "approve", approve: true, by: "ana", note: "within policy", at: later))
        expectRunnable(approved.state)
        #expect(approved.state.steps[1].status == .succeeded)
        #expect(approved.state.steps[1].resolution == StepResolution(by: "ana", note: "within policy", at: later))
        #expect(approved.state.steps[1].dueAt == nil)
        #expect(approved.state.steps[2].status == .running, "the sleep after it is due")
        #expect(approved.events.map(\.kind) == [.stepApproved, .stepSucceeded])
        #expect(approved.events[0].message == "ana approved approve: within policy")
        #expect(machine.decide(approved.state, step: "approve", approve: false, by: "bo", note: "", at: later) == nil, "decided once")
    }

    @Test func aRejectionFailsTheStepAndCompensatesWhatCameBefore() throws {
        let rejected = try #require(machine.decide(waitingForApproval(), step: "approve", approve: false, by: "bo", note: "over the limit", at: t0))
        expectRunnable(rejected.state)
        #expect(rejected.state.steps[1].status == .failed)
        #expect(rejected.state.status == .compensating)
        #expect(rejected.state.failure == RunFailure(step: "approve", reason: "rejected by bo: over the limit"))
        #expect(rejected.state.steps[0].status == .compensating, "reserve is undone at once")
        #expect(rejected.state.steps[0].dueAt == t0)
        #expect(rejected.events.map(\.kind) == [.stepRejected, .stepFailed, .compensationStarted])
    }

    @Test func noDecisionBeforeTheTimeoutIsARejectionThatSaysSo() throws {
        let timeout = t0.addingTimeInterval(48 * 3600)
        let waiting = waitingForApproval()
        #expect(waiting.dueSteps(at: timeout.addingTimeInterval(-1)).isEmpty)
        #expect(waiting.dueSteps(at: timeout) == [1])
        let ended = machine.waitEnded(waiting, step: 1, at: timeout)
        expectRunnable(ended.state)
        #expect(ended.state.steps[1].status == .failed)
        #expect(ended.state.status == .compensating)
        let reason = try #require(ended.state.failure?.reason)
        #expect(reason == "nobody approved or rejected it within 48h; a timeout counts as a rejection")
        #expect(ended.events.first?.kind == .stepRejected)
        #expect(ended.events.first?.data["timedOut"] == true)
    }

    @Test func aSleepEndsOnItsOwnAndTheNextStepIsDue() throws {
        let approved = try #require(machine.decide(waitingForApproval(), step: "approve", approve: true, by: "ana", note: "", at: t0))
        let sleeping = machine.beginWait(
            approved.state, step: 2, wait: StepWait(kind: .sleep, since: t0, until: t0.addingTimeInterval(900)), at: t0)
        expectRunnable(sleeping.state)
        #expect(sleeping.state.steps[2].status == .waiting)
        #expect(sleeping.events.map(\.message) == ["hold sleeps 15m, until 2027-01-15T08:15:00Z"])
        #expect(machine.decide(sleeping.state, step: "hold", approve: true, by: "ana", note: "", at: t0) == nil, "a sleep is not decided by a person")
        let woke = machine.waitEnded(sleeping.state, step: 2, at: t0.addingTimeInterval(900))
        expectRunnable(woke.state)
        #expect(woke.state.steps[2].status == .succeeded)
        #expect(woke.state.steps[3].status == .running)
        #expect(woke.state.steps[3].dueAt == t0.addingTimeInterval(900))
        #expect(woke.events.map(\.kind) == [.sleepEnded, .stepSucceeded])
    }

    @Test func aCancelDuringAWaitCompensatesAtOnceWithoutWaitingForTheTimer() throws {
        let cancelled = try #require(machine.cancel(waitingForApproval(), reason: "customer withdrew", by: "ana", at: t0.addingTimeInterval(60)))
        expectRunnable(cancelled.state)
        #expect(cancelled.state.steps[1].status == .failed)
        #expect(cancelled.state.steps[1].dueAt == nil, "the timeout no longer wakes anything")
        #expect(cancelled.state.steps[1].lastError == "the run turned back while it waited")
        #expect(cancelled.state.steps[0].status == .compensating)
        #expect(cancelled.state.steps[0].dueAt == t0.addingTimeInterval(60))
    }

    @Test func anAbandonStopsTheWait() throws {
        let abandoned = try #require(machine.abandon(waitingForApproval(), by: "ana", note: "settled by phone", at: t0))
        expectRunnable(abandoned.state)
        #expect(abandoned.state.status == .abandoned)
        #expect(abandoned.state.steps[1].status == .failed)
        #expect(abandoned.state.nextDueAt == nil)
    }

    @Test func aWaitThatCannotBeginFailsTheStepAsARefusal() throws {
        let failed = machine.waitCannotBegin(reserved(), step: 1, reason: "cannot write the approval's prompt: no input.amount", at: t0)
        expectRunnable(failed.state)
        #expect(failed.state.steps[1].status == .failed)
        #expect(failed.state.status == .compensating)
    }

    @Test func theDeadlineWakesARunWhoseStepWaits() throws {
        let withDeadline = SagaMachine(
            saga: try saga(
                """
                { "name": "d", "version": 1, "deadline": "1h", "steps": [
                  { "name": "a", "request": { "method": "POST", "url": "http://h/a" }, "compensation": { "method": "DELETE", "url": "http://h/a" } },
                  { "name": "w", "approval": { "timeout": "2d" } } ] }
                """))
        var state = withDeadline.start(runID: "r", at: t0).state
        state = withDeadline.beginAttempt(state, step: 0, at: t0).state
        state = withDeadline.finishAttempt(state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        state = withDeadline.beginWait(state, step: 1, wait: StepWait(kind: .approval, since: t0, until: t0.addingTimeInterval(172_800)), at: t0).state
        #expect(withDeadline.nextWakeAt(state) == t0.addingTimeInterval(3600), "the deadline comes before the approval's timeout")
        let passed = try #require(withDeadline.deadlinePassed(state, at: t0.addingTimeInterval(3600)))
        #expect(passed.state.status == .compensating)
        #expect(passed.state.steps[1].status == .failed)
    }

    @Test func thePlanCountsWaitsInTheWorstCaseAndRejectionsAsFailures() throws {
        let plan = Planner.plan(machine.saga)
        #expect(plan.waves == [["reserve"], ["approve"], ["hold"], ["pay"]])
        #expect(plan.steps[1].wait?.kind == .approval)
        #expect(plan.steps[1].wait?.longest == .seconds(48 * 3600))
        #expect(plan.steps[2].wait?.longest == .seconds(900))
        let rejected = try #require(plan.failures.first { $0.step == "approve" })
        #expect(rejected.compensationWaves == [["reserve"]])
        #expect(rejected.outcome == .compensated)
        #expect(plan.worstCase >= .seconds(48 * 3600 + 900))
    }

    // MARK: - Definitions

    @Test func aStepDoesExactlyOneThing() {
        let both = problems(
            """
            { "name": "x", "version": 1, "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://h/a" }, "sleep": "1m" } ] }
            """)
        #expect(both.map { $0.path?.description ?? "" } == ["steps[0].sleep"])
        #expect(both.first?.message.contains("a step does one thing") == true)
        let none = problems(#"{ "name": "x", "version": 1, "steps": [ { "name": "a" } ] }"#)
        #expect(none.first?.message.contains("\"request\"") == true && none.first?.message.contains("\"approval\"") == true)
    }

    @Test func waitsAreCheckedWhereTheyAreWritten() {
        let found = problems(
            """
            { "name": "x", "version": 1, "steps": [
              { "name": "a", "approval": { "prompt": "ok?" } },
              { "name": "b", "sleep": "forever" },
              { "name": "c", "sleepUntil": "tomorrow" },
              { "name": "d", "approval": { "timeout": "1h", "prompt": "{{input.amount}" } },
              { "name": "e", "request": { "method": "POST", "url": "http://h/{{steps.a.response.body.id}}" } }
            ] }
            """)
        let paths = found.map { $0.path?.description ?? "" }
        #expect(paths.contains("steps[0].approval"), "\(found)")
        #expect(found.contains { $0.path?.description == "steps[0].approval" && $0.message.contains("\"timeout\" is required") })
        #expect(paths.contains("steps[1].sleep"))
        #expect(found.contains { $0.path?.description == "steps[2].sleepUntil" && $0.message.contains("RFC 3339") })
        #expect(paths.contains("steps[3].approval.prompt"))
        #expect(found.contains { $0.path?.description == "steps[4].request.url" && $0.message.contains("is an approval and has no response") })
    }

    @Test func aWaitsTemplatesCountAsReadingTheInput() throws {
        let withSchema = try saga(
            """
            { "name": "x", "version": 1, "inputSchema": { "type": "object", "properties": { "at": { "type": "string" } } },
              "steps": [ { "name": "a", "sleepUntil": "{{input.at}}" } ] }
            """)
        #expect(withSchema.inputReferences.map(\.reference.description) == ["input.at"])
        #expect(withSchema.warnings.contains { $0.path?.description == "steps[0].sleepUntil" }, "input.at is not required")
        let undeclared = problems(
            """
            { "name": "x", "version": 1, "inputSchema": { "type": "object", "properties": { "at": { "type": "string" } } },
              "steps": [ { "name": "a", "approval": { "timeout": "1h", "prompt": "{{input.amount}}" } } ] }
            """)
        #expect(undeclared.contains { $0.path?.description == "steps[0].approval.prompt" && $0.message.contains("does not declare") })
    }
}

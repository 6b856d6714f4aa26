import Foundation
import Testing
@testable import SkaldCore
import SkaldTestSupport

/// A diamond: a → (b, c) → d, every step with a compensation; and e after d, without one.
let diamond = """
    { "name": "diamond", "version": 1, "defaults": { "retry": { "maxAttempts": 1 } }, "steps": [
      { "name": "a", "request": { "method": "POST", "url": "http://h/a" }, "compensation": { "method": "DELETE", "url": "http://h/a" } },
      { "name": "b", "dependsOn": ["a"], "request": { "method": "POST", "url": "http://h/b/{{steps.a.response.body.id}}" },
        "compensation": { "method": "DELETE", "url": "http://h/b" } },
      { "name": "c", "dependsOn": ["a"], "request": { "method": "POST", "url": "http://h/c" }, "compensation": { "method": "DELETE", "url": "http://h/c" } },
      { "name": "d", "dependsOn": ["b", "c"], "request": { "method": "POST", "url": "http://h/d/{{steps.b.response.status}}/{{steps.a.response.status}}" },
        "compensation": { "method": "DELETE", "url": "http://h/d" } },
      { "name": "e", "dependsOn": ["d"], "request": { "method": "POST", "url": "http://h/e" } }
    ] }
    """

@Suite(.timeLimit(.minutes(10))) struct ParallelSagaTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(diamond))
    }

    func names(_ state: RunState, _ indexes: [Int]) -> [String] { indexes.map { state.steps[$0].name } }

    @Test func stepsWhoseDependenciesAreMetRunTogether() {
        #expect(Planner.plan(machine.saga).waves == [["a"], ["b", "c"], ["d"], ["e"]])
        var state = machine.start(runID: "r", at: t0).state
        #expect(names(state, state.dueSteps(at: t0)) == ["a"])
        state = machine.beginAttempt(state, step: 0, at: t0).state
        state = machine.finishAttempt(state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        #expect(names(state, state.dueSteps(at: t0)) == ["b", "c"])
        // d waits for both.
        state = machine.beginAttempt(state, step: 1, at: t0).state
        state = machine.finishAttempt(state, step: 1, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        #expect(names(state, state.dueSteps(at: t0)) == ["c"])
    }

    @Test(arguments: [
        // failing step, compensation waves, steps passed over
        ("a", [[String]](), [String]()),
        ("b", [["c"], ["a"]], []),  // c was in flight beside b: it finishes, then is undone before a
        ("d", [["b", "c"], ["a"]], []),
        ("e", [["d"], ["b", "c"], ["a"]], []),
    ])
    func compensationWalksTheGraphBackwards(failing: String, waves: [[String]], skipped: [String]) {
        let plan = Planner.plan(machine.saga, failAt: [failing])
        #expect(plan.failures.count == 1)
        #expect(plan.failures[0].compensationWaves == waves)
        #expect(plan.failures[0].skipped == skipped)
        #expect(plan.failures[0].outcome == .compensated)
    }

    @Test func aFailureWhileASiblingIsWaitingForARetryStopsTheSibling() throws {
        let retrying = SagaMachine(saga: try saga(diamond.replacingOccurrences(of: "\"maxAttempts\": 1", with: "\"maxAttempts\": 3")))
        var state = retrying.start(runID: "r", at: t0).state
        state = retrying.finishAttempt(retrying.beginAttempt(state, step: 0, at: t0).state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        state = retrying.beginAttempt(state, step: 1, at: t0).state
        state = retrying.beginAttempt(state, step: 2, at: t0).state
        // c fails retryably: it waits for a retry. b then fails for good.
        state = retrying.finishAttempt(state, step: 2, outcome: .unavailable, duration: .zero, at: t0, jitterSample: 0).state
        #expect(state.steps[2].dueAt != nil)
        state = retrying.finishAttempt(state, step: 1, outcome: .declined, duration: .zero, at: t0, jitterSample: 0).state
        #expect(state.status == .compensating)
        #expect(state.steps[2].status == .failed)
        #expect(state.steps[2].dueAt == nil)
        #expect(names(state, state.dueSteps(at: .distantFuture)) == ["a"])
    }

    @Test func validationRejectsCyclesUnknownNamesAndReferencesThatMayNotHaveRun() {
        let found = problems("""
            { "name": "x", "version": 1, "steps": [
              { "name": "a", "dependsOn": ["c"], "request": { "method": "POST", "url": "http://h/a" } },
              { "name": "b", "dependsOn": [], "request": { "method": "POST", "url": "http://h/{{steps.a.response.body.id}}" } },
              { "name": "c", "dependsOn": ["a", "bb", "c"], "request": { "method": "POST", "url": "http://h/c" } }
            ] }
            """)
        #expect(found.contains { $0.path?.description == "steps[2].dependsOn" && $0.message.contains("cycle: a waits for c waits for a") })
        #expect(found.contains { $0.path?.description == "steps[2].dependsOn[1]" && $0.message.contains("did you mean \"b\"") })
        #expect(found.contains { $0.path?.description == "steps[2].dependsOn[2]" && $0.message.contains("cannot depend on itself") })
        let parallel = problems("""
            { "name": "x", "version": 1, "steps": [
              { "name": "a", "request": { "method": "POST", "url": "http://h/a" } },
              { "name": "b", "dependsOn": [], "request": { "method": "POST", "url": "http://h/{{steps.a.response.body.id}}" } }
            ] }
            """)
        #expect(parallel.count == 1)
        #expect(parallel.contains { $0.path?.description == "steps[1].request.url" && $0.message.contains("add \"a\" to this step's dependsOn") })
    }

    @Test func referencesMayUseTransitiveDependencies() throws {
        // d uses a's response; a is a dependency of b, which d depends on.
        _ = try saga(diamond)
    }
}

let trip = """
    { "name": "trip", "version": 1, "deadline": "1m", "defaults": { "retry": { "maxAttempts": 2, "initialInterval": "1s", "jitter": "none" } }, "steps": [
      { "name": "hotel", "dependsOn": [], "request": { "method": "POST", "url": "http://h/h" }, "compensation": { "method": "DELETE", "url": "http://h/h" } },
      { "name": "car", "dependsOn": [], "request": { "method": "POST", "url": "http://h/c" }, "compensation": { "method": "DELETE", "url": "http://h/c" } },
      { "name": "pay", "dependsOn": ["hotel", "car"], "pivot": true, "request": { "method": "POST", "url": "http://h/p" } },
      { "name": "confirm", "dependsOn": ["pay"], "request": { "method": "POST", "url": "http://h/x" } }
    ] }
    """

@Suite(.timeLimit(.minutes(10))) struct PivotAndDeadlineTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(trip))
    }

    func run(_ state: RunState, _ step: Int, _ outcome: AttemptOutcome, at: Date = t0) -> RunState {
        let begun = machine.beginAttempt(state, step: step, at: at).state
        return machine.finishAttempt(begun, step: step, outcome: outcome, duration: .zero, at: at, jitterSample: 0).state
    }

    func pastThePivot() -> RunState {
        var state = machine.start(runID: "r", at: t0).state
        state = run(run(state, 0, .ok), 1, .ok)
        return run(state, 2, .ok)
    }

    @Test func afterThePivotAFailureIsRetriedThenTheRunIsStuckNotCompensated() throws {
        var state = pastThePivot()
        #expect(machine.isPastPivot(state))
        state = run(state, 3, .unavailable)
        #expect(state.status == .running)
        #expect(state.steps[3].dueAt == t0.addingTimeInterval(1))
        state = run(state.settingDue(3, to: t0), 3, .unavailable)
        #expect(state.status == .stuck)
        #expect(state.stuck?.step == "confirm")
        #expect(state.steps.map(\.status) == [.succeeded, .succeeded, .succeeded, .failed])
        #expect(state.nextDueAt == nil)

        let resumed = try #require(machine.resume(state, by: "ana", note: "fixed the mail server", at: t0))
        #expect(resumed.state.status == .running)
        #expect(resumed.events[0].message.contains("ana resumed the run"))
        #expect(resumed.state.steps[3].attemptsBase == 2)
        // A fresh budget: one failure is retried again.
        let again = run(resumed.state, 3, .unavailable)
        #expect(again.status == .running)
        #expect(run(again.settingDue(3, to: t0), 3, .ok).status == .completed)
    }

    @Test func aFailureBeforeThePivotCompensatesBothReservationsAtOnce() {
        var state = machine.start(runID: "r", at: t0).state
        state = run(run(state, 0, .ok), 1, .ok)
        state = run(state, 2, .declined)
        #expect(state.status == .compensating)
        #expect(state.dueSteps(at: t0) == [0, 1])
    }

    @Test func theDeadlineStopsForwardWorkAndCompensatesWithTheReasonInTheHistory() throws {
        var state = machine.start(runID: "r", at: t0).state
        #expect(state.deadlineAt == t0.addingTimeInterval(60))
        state = run(state, 0, .ok)
        state = run(state, 1, .unavailable)  // car waits for a retry
        #expect(machine.deadlinePassed(state, at: t0.addingTimeInterval(59)) == nil)
        #expect(machine.nextWakeAt(state) == t0.addingTimeInterval(1))
        let passed = try #require(machine.deadlinePassed(state, at: t0.addingTimeInterval(60)))
        #expect(passed.state.status == .compensating)
        #expect(passed.events.first?.kind == .deadlinePassed)
        #expect(passed.state.failure?.reason == "the saga deadline of 1m passed")
        #expect(passed.state.steps.map(\.status) == [.compensating, .failed, .pending, .pending])
    }

    @Test func theDeadlineDoesNotTurnBackARunPastThePivot() {
        #expect(machine.deadlinePassed(pastThePivot(), at: t0.addingTimeInterval(3600)) == nil)
    }

    @Test func aCancelAtOrPastThePivotIsRefusedAndBeforeItCompensates() {
        #expect(machine.cancel(pastThePivot(), reason: "", at: t0) == nil)
        var state = machine.start(runID: "r", at: t0).state
        state = run(run(state, 0, .ok), 1, .ok)
        let paying = machine.beginAttempt(state, step: 2, at: t0).state
        #expect(machine.cancel(paying, reason: "", at: t0) == nil, "the pivot may succeed at any moment")
        #expect(machine.cancel(state, reason: "", at: t0)?.state.status == .compensating)
    }

    @Test func validationKeepsThePivotAPointOfNoReturn() {
        let found = problems("""
            { "name": "x", "version": 1, "steps": [
              { "name": "a", "dependsOn": [], "request": { "method": "POST", "url": "http://h/a" } },
              { "name": "side", "dependsOn": [], "request": { "method": "POST", "url": "http://h/s" } },
              { "name": "pay", "dependsOn": ["a"], "pivot": true, "request": { "method": "POST", "url": "http://h/p" },
                "compensation": { "method": "POST", "url": "http://h/refund" } },
              { "name": "ship", "dependsOn": ["pay"], "pivot": true, "request": { "method": "POST", "url": "http://h/ship" },
                "compensation": { "method": "DELETE", "url": "http://h/ship" } }
            ] }
            """)
        #expect(found.contains { $0.path?.description == "steps[3].pivot" && $0.message.contains("only one step can be the pivot") })
        #expect(found.contains { $0.path?.description == "steps[3].compensation" && $0.message.contains("runs after the pivot") })
        #expect(found.contains { $0.path?.description == "steps[2].compensation" && $0.message.contains("would never run") })
        #expect(found.contains { $0.path?.description == "steps[1]" && $0.message.contains("neither before nor after the pivot") })
    }

    @Test func planShowsAStuckRunAfterThePivot() {
        let plan = Planner.plan(machine.saga, failAt: ["confirm"])
        #expect(plan.failures[0].outcome == .stuck)
        #expect(plan.failures[0].stuckStep == "confirm")
        #expect(plan.failures[0].compensationWaves.isEmpty)
    }
}

@Suite(.timeLimit(.minutes(10))) struct OutcomeRuleTests {
    @Test func stepRulesOverrideTheDefaults() throws {
        let definition = try saga("""
            { "name": "x", "version": 1, "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://h/a",
              "successStatus": [200, 404], "retryOn": [409, "4xx"], "failOn": [503], "maxElapsed": "3s" } } ] }
            """)
        let rules = try #require(definition.steps[0].request).statusRules
        #expect(rules.classify(200) == .success)
        #expect(rules.classify(404) == .success)
        #expect(rules.classify(201) == .permanent, "a 2xx that successStatus leaves out is not a success")
        #expect(rules.classify(409) == .retryable)
        #expect(rules.classify(422) == .retryable)
        #expect(rules.classify(503) == .permanent)
        #expect(rules.classify(500) == .retryable)
        #expect(StatusRules.standard.classify(404) == .permanent)
        #expect(definition.steps[0].request?.maxElapsed == .seconds(3))
    }

    @Test func badRulesAreNamed() {
        let found = problems("""
            { "name": "x", "version": 1, "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://h/a",
              "retryOn": [409, "6xx", "abc"], "failOn": [409], "successStatus": [] } } ] }
            """)
        #expect(found.contains { $0.path?.description == "steps[0].request.retryOn[1]" })
        #expect(found.contains { $0.path?.description == "steps[0].request.retryOn[2]" })
        #expect(found.contains { $0.message.contains("409 is in both retryOn and failOn") })
        #expect(found.contains { $0.path?.description == "steps[0].request.successStatus" })
    }

    @Test func maxElapsedEndsRetriesEarly() throws {
        let machine = SagaMachine(saga: try saga("""
            { "name": "x", "version": 1, "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://h/a",
              "retry": { "maxAttempts": 10, "initialInterval": "1s", "backoffCoefficient": 2, "jitter": "none" }, "maxElapsed": "4s" } } ] }
            """))
        var state = machine.start(runID: "r", at: t0).state
        var now = t0
        var attempts = 0
        while state.status == .running {
            state = machine.beginAttempt(state, step: 0, at: now).state
            attempts += 1
            let finished = machine.finishAttempt(state, step: 0, outcome: .unavailable, duration: .zero, at: now, jitterSample: 0)
            state = finished.state
            if let due = state.steps[0].dueAt { now = due } else {
                #expect(finished.events.contains { $0.message.contains("maxElapsed 4s") })
            }
        }
        // Attempts at 0s, 1s, 3s; the next would start at 7s, past 4s.
        #expect(attempts == 3)
    }
}

@Suite(.timeLimit(.minutes(10))) struct RepairTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(threeSteps))
    }

    func failedCompensation() -> RunState {
        var state = machine.start(runID: "r", at: t0).state
        for (step, outcome) in [(0, AttemptOutcome.ok), (1, .ok), (2, .declined), (1, .declined)] {
            state = machine.finishAttempt(machine.beginAttempt(state, step: step, at: t0).state, step: step, outcome: outcome, duration: .zero, at: t0, jitterSample: 0).state
        }
        return state
    }

    @Test func resolvingByHandContinuesTheWalkAndRecordsWhoAndWhy() throws {
        let state = failedCompensation()
        #expect(state.status == .compensationFailed)
        #expect(machine.resolve(state, step: "a", note: "x", at: t0) == nil, "a's compensation did not fail")
        #expect(machine.resolve(state, step: "c", note: "x", at: t0) == nil, "c failed going forward, but the run is not stuck")
        let resolved = try #require(machine.resolve(state, step: "b", note: "refunded in the bank's console", by: "ana", at: t0))
        #expect(resolved.state.status == .compensating)
        #expect(resolved.state.steps.map(\.status) == [.compensating, .compensationResolved, .failed])
        #expect(resolved.state.steps[1].resolution == StepResolution(by: "ana", note: "refunded in the bank's console", at: t0))
        #expect(resolved.events[0].kind == .compensationResolved)
        #expect(resolved.events[0].message == "ana resolved the compensation of b by hand: refunded in the bank's console")
        #expect(resolved.events[0].data["by"] == "ana")
    }

    @Test func retryCanNameTheStep() throws {
        let state = failedCompensation()
        #expect(machine.retryCompensation(state, step: "a", at: t0) == nil)
        let retried = try #require(machine.retryCompensation(state, step: "b", by: "ana", at: t0))
        #expect(retried.state.dueSteps(at: t0) == [1])
        #expect(retried.events[0].message == "ana retried the compensation of b")
    }
}

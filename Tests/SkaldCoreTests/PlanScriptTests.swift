import Foundation
import SkaldCore
import Testing

/// `skald plan --when`: the run as it goes when the saga's conditions come out as scripted.
@Suite struct PlanScriptTests {
    static let opening = """
        { "name": "open-account", "version": 1, "steps": [
          { "name": "reserve", "request": { "method": "POST", "url": "http://127.0.0.1:1/reserve" },
            "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/reserve" } },
          { "name": "kyc", "request": { "method": "POST", "url": "http://127.0.0.1:1/kyc" },
            "failWhen": { "value": "{{steps.kyc.response.body.decision}}", "equals": "rejected" },
            "retryWhen": { "value": "{{steps.kyc.response.body.decision}}", "equals": "pending" },
            "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/kyc" } },
          { "name": "review", "when": { "value": "{{input.deposit}}", "greaterThan": 10000 },
            "request": { "method": "POST", "url": "http://127.0.0.1:1/review" } },
          { "name": "open", "request": { "method": "POST", "url": "http://127.0.0.1:1/open" } } ] }
        """

    let saga = try! SkaldCoreTests.saga(Self.opening)

    @Test func aSkippedStepIsLeftOutAndTheRestCompletes() {
        let plan = Planner.plan(saga, script: [("review", .skipped)])
        #expect(plan.waves == [["reserve"], ["kyc"], ["open"]])
        #expect(plan.skipped == ["review"] && plan.turnedBackAt == nil && plan.outcome == .completed)
        #expect(Planner.plan(saga, script: [("review", .runs)]).waves == [["reserve"], ["kyc"], ["review"], ["open"]])
    }

    @Test func aRefusalTurnsTheRunBackAndAPendingAnswerIsUndoneInCaseItApplied() {
        let refused = Planner.plan(saga, script: [("kyc", .refused)])
        #expect(refused.waves == [["reserve"], ["kyc"]] && refused.turnedBackAt == "kyc")
        #expect(refused.compensationWaves == [["reserve"]], "nothing was applied at kyc: only reserve is undone")
        #expect(refused.notRun == ["review", "open"] && refused.outcome == .compensated)

        let pending = Planner.plan(saga, script: [("kyc", .pending)])
        #expect(pending.compensationWaves == [["kyc"], ["reserve"]], "kyc accepted the work, so it is undone in case it applied")
    }

    @Test func aScriptThatTheSagaCannotFollowIsNamed() {
        #expect(Planner.problem(with: [("kyc", .refused), ("review", .skipped)], in: saga) == nil)
        #expect(Planner.problem(with: [("open", .refused)], in: saga) == "--when open=refused: open has no \"failWhen\", nor any condition to script")
        #expect(Planner.problem(with: [("kyc", .skipped)], in: saga) == "--when kyc=skipped: kyc has no \"when\"; its conditions can be scripted as kyc=refused, kyc=pending")
        #expect(Planner.problem(with: [("kcy", .refused)], in: saga)?.hasPrefix("--when kcy=refused: the saga has no step kcy; did you mean \"kyc\"?") == true)
    }
}

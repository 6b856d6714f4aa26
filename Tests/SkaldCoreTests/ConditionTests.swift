import Foundation
import Testing

@testable import SkaldCore
import SkaldTestSupport

/// An account opening: a KYC check whose 200 may carry a rejection, a manual review only for large deposits, and the
/// account opened with the review's answer when there was one.
let kycAccountOpening = """
    { "name": "open-account", "version": 1, "defaults": { "retry": { "maxAttempts": 3, "initialInterval": "1s", "jitter": "none" } }, "steps": [
      { "name": "reserve", "request": { "method": "POST", "url": "http://h/reserve" },
        "compensation": { "method": "DELETE", "url": "http://h/reserve/{{steps.reserve.idempotencyKey}}" } },
      { "name": "kyc", "request": { "method": "POST", "url": "http://h/kyc" },
        "failWhen": { "value": "{{steps.kyc.response.body.decision}}", "equals": "rejected" },
        "retryWhen": { "value": "{{steps.kyc.response.body.decision}}", "in": ["pending", "queued"] } },
      { "name": "review", "when": { "all": [ { "value": "{{input.deposit}}", "greaterThan": 10000 },
                                              { "not": { "value": "{{input.vip}}", "equals": true } } ] },
        "request": { "method": "POST", "url": "http://h/review" },
        "compensation": { "method": "DELETE", "url": "http://h/review" } },
      { "name": "open", "request": { "method": "POST", "url": "http://h/open",
        "body": { "reviewer": "{{steps.review.response.body.by ?? \\"nobody\\"}}" } } }
    ] }
    """

@Suite struct ConditionTests {
    let machine: SagaMachine

    init() throws {
        machine = SagaMachine(saga: try saga(kycAccountOpening))
    }

    func context(_ input: JSONValue, _ responses: [String: JSONValue] = [:]) -> TemplateContext {
        TemplateContext(
            input: input, runID: "r", env: [:], responses: responses.mapValues { StepResponse(status: 200, body: $0) }, callbackOutputs: [:],
            callback: nil)
    }

    @Test func comparisonsTreatAValueThatIsNotThereAsEqualToNothing() throws {
        func holds(_ json: String, _ input: JSONValue) throws -> Bool {
            let definition = try saga("""
                { "name": "t", "version": 1, "steps": [ { "name": "a", "when": \(json), "request": { "method": "POST", "url": "http://h/a" } } ] }
                """)
            return try #require(definition.steps[0].when).holds(in: context(input))
        }
        #expect(try holds(#"{"value": "{{input.n}}", "equals": 1}"#, ["n": 1.0]), "numbers as numbers")
        #expect(try holds(#"{"value": "{{input.n}}", "in": [2, 3]}"#, ["n": 3]))
        #expect(try holds(#"{"value": "{{input.n}}", "lessThan": 10}"#, ["n": 9.5]))
        #expect(try holds(#"{"value": "{{input.at}}", "greaterThan": "2026-01-01T00:00:00Z"}"#, ["at": "2026-06-01T00:00:00Z"]))
        #expect(try holds(#"{"value": "{{input.iban}}", "matches": "^GB[0-9]+$"}"#, ["iban": "GB123"]))
        #expect(try holds(#"{"value": "{{input.iban}}", "matches": "^GB[0-9]+$"}"#, ["iban": "DE123"]) == false)
        // Absent: equal to nothing, comparable with nothing; exists and not tell it apart.
        #expect(try holds(#"{"value": "{{input.n}}", "equals": null}"#, [:]) == false)
        #expect(try holds(#"{"value": "{{input.n}}", "lessThan": 10}"#, [:]) == false)
        #expect(try holds(#"{"value": "{{input.n}}", "greaterThan": 10}"#, [:]) == false)
        #expect(try holds(#"{"value": "{{input.n}}", "exists": false}"#, [:]))
        #expect(try holds(#"{"value": "{{input.n}}", "exists": false}"#, ["n": nil]), "null counts as not there")
        #expect(try holds(#"{"not": {"value": "{{input.n}}", "equals": 1}}"#, [:]))
        #expect(try holds(#"{"value": "{{input.n}}", "lessThan": 10}"#, ["n": "9"]) == false, "text and a number do not compare")
        #expect(try holds(#"{"any": [{"value": "{{input.a}}", "exists": true}, {"value": "{{input.b}}", "exists": true}]}"#, ["b": 1]))
        #expect(try holds(#"{"all": [{"value": "{{input.a}}", "exists": true}, {"value": "{{input.b}}", "exists": true}]}"#, ["b": 1]) == false)
    }

    @Test func badConditionsAreRefusedWhereTheyAreWritten() {
        func problem(_ step: String) -> String {
            problems("""
                { "name": "t", "version": 1, "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://h/a" } }, \(step) ] }
                """).map { "\($0.path?.description ?? ""): \($0.message)" }.joined(separator: "\n")
        }
        let b = #""name": "b", "request": { "method": "POST", "url": "http://h/b" }"#
        #expect(problem(#"{ \#(b), "when": {"value": "{{input.x}}"} }"#).contains("steps[1].when: a test needs one comparison"))
        #expect(problem(#"{ \#(b), "when": {"value": "{{input.x}}", "equals": 1, "in": [1]} }"#).contains("steps[1].when.in: a test has one comparison"))
        #expect(problem(#"{ \#(b), "when": {"value": "{{input.x}}", "equal": 1} }"#).contains("steps[1].when.equal: \"equal\" is not part of a condition; did you mean \"equals\"?"))
        #expect(problem(#"{ \#(b), "when": {"all": []} }"#).contains("steps[1].when.all: \"all\" must be a non-empty array"))
        #expect(problem(#"{ \#(b), "when": {"not": {"value": "{{input.x}}", "matches": "("}} }"#).contains("steps[1].when.not.matches: \"(\" is not a regular expression"))
        #expect(problem(#"{ \#(b), "when": {"value": "approved", "equals": "approved"} }"#).contains("steps[1].when.value: \"value\" has no {{…}} reference"))
        #expect(problem(#"{ \#(b), "when": {"value": "{{steps.c.response.body.x}}", "exists": true} }"#).contains("steps[1].when: {{steps.c.response.body.x}} refers to step \"c\", which does not exist"))
        #expect(problem(#"{ "name": "b", "sleep": "1m", "failWhen": {"value": "{{input.x}}", "exists": true} }"#).contains("steps[1].failWhen: \"failWhen\" judges the answer to the step's \"request\""))
        #expect(problem(#"{ \#(b), "pivot": true, "when": {"value": "{{input.x}}", "exists": true} }"#).contains("steps[1].when: the pivot, the point of no return, cannot be skipped"))
        // A step that may be skipped has no response: read it only with a default.
        let skippable = #"{ "name": "b", "when": {"value": "{{input.x}}", "exists": true}, "request": { "method": "POST", "url": "http://h/b" } }"#
        let reader = #"{ "name": "c", "request": { "method": "POST", "url": "http://h/c", "body": { "id": "{{steps.b.response.body.id}}" } } }"#
        #expect(problem("\(skippable), \(reader)").contains("steps[2].request: {{steps.b.response.body.id}} reads step \"b\", which has \"when\" and may be skipped"))
        #expect(problem("\(skippable), \(reader.replacingOccurrences(of: "body.id}}", with: "body.id ?? \\\"none\\\"}}"))").isEmpty)
        #expect(problems(kycAccountOpening).isEmpty)
    }

    /// reserve succeeded; kyc's first attempt is in flight.
    func checking() -> RunState {
        var state = machine.start(runID: "r", at: t0).state
        state = machine.beginAttempt(state, step: 0, at: t0).state
        state = machine.finishAttempt(state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        return machine.beginAttempt(state, step: 1, at: t0).state
    }

    @Test func failWhenMakesA200ARefusalAndTheRunTurnsBack() {
        let answer = AttemptOutcome.succeeded(StepResponse(status: 200, body: ["decision": "rejected"]))
        let judged = machine.judge(answer, checking(), step: 1, phase: .forward, context: context(["deposit": 5]))
        guard case .failed(let failure) = judged else { Issue.record("\(judged)"); return }
        #expect(failure.reason == #"HTTP 200, refused by failWhen: steps.kyc.response.body.decision equals "rejected""#)
        #expect(!failure.isRetryable && !failure.mayHaveApplied)
        let after = machine.finishAttempt(checking(), step: 1, outcome: judged, duration: .zero, at: t0, jitterSample: 0).state
        #expect(after.status == .compensating)
        #expect(after.steps[1].status == .failed, "a refusal: nothing to undo at kyc")
        #expect(after.steps[0].status == .compensating)
        #expect(machine.judge(.succeeded(StepResponse(status: 200, body: ["decision": "approved"])), checking(), step: 1, phase: .forward, context: context([:])) == .succeeded(StepResponse(status: 200, body: ["decision": "approved"])))
    }

    @Test func retryWhenRetriesAndALastPendingAnswerIsAnUnknownOutcome() {
        var state = checking()
        for attempt in 1...3 {
            let judged = machine.judge(.succeeded(StepResponse(status: 200, body: ["decision": "pending"])), state, step: 1, phase: .forward, context: context([:]))
            state = machine.finishAttempt(state, step: 1, outcome: judged, duration: .zero, at: t0, jitterSample: 0).state
            if attempt < 3 {
                #expect(state.steps[1].status == .running && state.steps[1].dueAt! > t0, "retried after its backoff")
                state = machine.beginAttempt(state, step: 1, at: state.steps[1].dueAt!).state
            }
        }
        #expect(state.steps[1].status == .outcomeUnknown || state.steps[1].outcomeUnknown, "it accepted the work and never finished it")
        #expect(state.status == .compensating)
    }

    @Test func aStepWhoseWhenIsFalseIsSkippedNeverCompensatedAndTheRunGoesOn() {
        var state = checking()
        state = machine.finishAttempt(state, step: 1, outcome: .succeeded(StepResponse(status: 200, body: ["decision": "approved"])), duration: .zero, at: t0, jitterSample: 0).state
        #expect(machine.decidesBeforeStarting(state, step: 2))
        #expect(machine.saga.steps[2].when?.holds(in: context(["deposit": 500])) == false)
        #expect(machine.saga.steps[2].when?.holds(in: context(["deposit": 50000])) == true)
        #expect(machine.saga.steps[2].when?.holds(in: context(["deposit": 50000, "vip": true])) == false)
        let skipped = machine.skip(state, step: 2, at: t0)
        #expect(skipped.state.steps[2].status == .skipped)
        #expect(skipped.events.first?.message == "review skipped: its condition is false ((input.deposit > 10000 and not input.vip equals true))")
        #expect(skipped.state.steps[3].status == .running, "open goes on as if review had succeeded")
        #expect(machine.problems(in: skipped.state).isEmpty)
        // open fails for good: reserve is undone, review (skipped) is not.
        state = machine.beginAttempt(skipped.state, step: 3, at: t0).state
        let refused = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 400", isRetryable: false))
        state = machine.finishAttempt(state, step: 3, outcome: refused, duration: .zero, at: t0, jitterSample: 0).state
        #expect(state.steps.map(\.status) == [.compensating, .compensationSkipped, .skipped, .failed], "kyc has nothing to undo")
        #expect(machine.problems(in: state).isEmpty)
    }

    @Test func aRunWhoseSkippedStepsAreTheRestCompletes() throws {
        let machine = SagaMachine(saga: try saga("""
            { "name": "t", "version": 1, "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://h/a" } },
              { "name": "b", "when": {"value": "{{steps.a.response.body.more}}", "equals": true}, "request": { "method": "POST", "url": "http://h/b" } } ] }
            """))
        var state = machine.start(runID: "r", at: t0).state
        state = machine.beginAttempt(state, step: 0, at: t0).state
        state = machine.finishAttempt(state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        let done = machine.skip(state, step: 1, at: t0)
        #expect(done.state.status == .completed)
        #expect(done.events.last?.message == "run completed: 1 step succeeded; skipped by their condition: b")
    }

    @Test func aCompletedRunGivesItsOutputAndBadOutputsAreRefused() throws {
        let text = """
            { "name": "t", "version": 1, "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://h/a" } },
              { "name": "b", "when": {"value": "{{input.more}}", "equals": true}, "request": { "method": "POST", "url": "http://h/b" } } ],
              "output": { "order": "{{input.order}}", "a": "{{steps.a.response.body.id}}", "b": "{{steps.b.response.body.id ?? null}}", "n": 1 } }
            """
        let definition = try saga(text)
        let machine = SagaMachine(saga: definition)
        var state = machine.start(runID: "r", at: t0).state
        #expect(definition.output(of: state, input: ["order": "o1"]) == nil, "only a completed run has an output")
        state = machine.beginAttempt(state, step: 0, at: t0).state
        state = machine.finishAttempt(state, step: 0, outcome: .succeeded(.ok(["id": 7])), duration: .zero, at: t0, jitterSample: 0).state
        state = machine.skip(state, step: 1, at: t0).state
        #expect(try definition.output(of: state, input: ["order": "o1"])?.get() == ["order": "o1", "a": 7, "b": nil, "n": 1])
        #expect(throws: TemplateRenderError.self) { try definition.output(of: state, input: [:])?.get() }

        func problem(_ output: String) -> String {
            problems(text.replacingOccurrences(of: #""output": { "order": "{{input.order}}", "a": "{{steps.a.response.body.id}}", "b": "{{steps.b.response.body.id ?? null}}", "n": 1 }"#, with: #""output": \#(output)"#))
                .map { "\($0.path?.description ?? ""): \($0.message)" }.joined(separator: "\n")
        }
        #expect(problem(#""{{steps.a.response.body.id}}""#).contains("output: \"output\" must be an object"))
        #expect(problem(#"{"b": "{{steps.b.response.body.id}}"}"#).contains("output: {{steps.b.response.body.id}} reads step \"b\", which has \"when\" and may be skipped"))
        #expect(problem(#"{"k": "{{env.KEY}}"}"#).contains("output: {{env.KEY}}: the output is worked out from what the run stored"))
        #expect(problem(#"{"c": "{{steps.c.response.body.id}}"}"#).contains("refers to step \"c\", which does not exist"))
        #expect(problem(#"{"u": "{{callback.url}}"}"#).contains("is only known in the request of a step that declares \"callback\""))
    }
}

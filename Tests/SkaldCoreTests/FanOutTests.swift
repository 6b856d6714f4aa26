import Foundation
import SkaldCore
import Testing

/// Fan-out: a `forEach` step runs its call once per item, each item a step of the run with its own attempts and
/// compensation; the step's status sums up its items', and the run turns back when one fails for good.
@Suite struct FanOutTests {
    static let order = """
        { "name": "order", "version": 1, "defaults": { "retry": { "maxAttempts": 2, "initialInterval": "1s", "jitter": "none" } },
          "steps": [
            { "name": "open", "request": { "method": "POST", "url": "http://127.0.0.1:1/orders" },
              "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/orders" } },
            { "name": "reserve", "forEach": "{{input.items}}", "maxConcurrency": 2,
              "request": { "method": "POST", "url": "http://127.0.0.1:1/reservations", "body": { "sku": "{{item.sku}}", "line": "{{index}}" } },
              "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/reservations/{{steps.reserve.response.body.id}}" } },
            { "name": "ship", "request": { "method": "POST", "url": "http://127.0.0.1:1/ship",
              "body": { "first": "{{steps.reserve.responses[0].body.id}}", "all": "{{steps.reserve.responses}}" } } } ] }
        """

    let machine = SagaMachine(saga: try! saga(Self.order))
    let items: [JSONValue] = [["sku": "a"], ["sku": "b"], ["sku": "c"]]

    /// open succeeded and reserve is due to run over its items.
    func due() -> RunState {
        var state = machine.start(runID: "r", at: t0).state
        state = machine.beginAttempt(state, step: 0, at: t0).state
        return machine.finishAttempt(state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
    }

    func send(_ state: RunState, _ position: Int, _ outcome: AttemptOutcome) -> RunState {
        let begun = machine.beginAttempt(state, step: position, at: t0).state
        return machine.finishAttempt(begun, step: position, outcome: outcome, duration: .zero, at: t0, jitterSample: 0).state
    }

    @Test func itemsRunUpToMaxConcurrencyAndTheStepSucceedsWhenAllDo() {
        var state = due()
        #expect(machine.fansOut(state, step: 1))
        let transition = machine.fanOut(state, step: 1, items: .success(items), at: t0)
        state = transition.state
        #expect(state.steps.map(\.name) == ["open", "reserve", "ship", "reserve[0]", "reserve[1]", "reserve[2]"])
        #expect(state.steps[1].elements == 3..<6 && state.steps[1].status == .running && state.steps[1].dueAt == nil)
        #expect(!state.steps[1].isInFlight, "the step itself sends nothing")
        #expect(state.dueSteps(at: t0) == [3, 4], "maxConcurrency 2: the third item waits")
        #expect(transition.changedSteps == [1, 3, 4, 5], "the new items are stored with the transition")
        #expect(transition.events.map(\.kind) == [.itemsStarted])
        #expect(machine.problems(in: state).isEmpty)

        state = send(state, 3, .ok)
        #expect(state.dueSteps(at: t0) == [4, 5], "an item done lets the next one start")
        state = send(state, 4, .ok)
        #expect(state.steps[1].status == .running)
        let last = machine.finishAttempt(
            machine.beginAttempt(state, step: 5, at: t0).state, step: 5, outcome: .ok, duration: .zero, at: t0, jitterSample: 0)
        state = last.state
        #expect(state.steps[1].status == .succeeded)
        #expect(last.events.contains { $0.kind == .stepSucceeded && $0.step == "reserve" && $0.message == "reserve succeeded: all 3 items done" })
        #expect(state.dueSteps(at: t0) == [2], "the step after it starts")
        #expect(state.itemResponses()["reserve"]?[1]?["status"] == 200)
        state = send(state, 2, .ok)
        #expect(state.status == .completed)
        #expect(machine.problems(in: state).isEmpty)
        // Read back from rows, the step learns where its items are again.
        #expect(RunState(id: "r", steps: state.steps.map { var step = $0; step.elements = nil; return step }).steps == state.steps)
    }

    @Test func anItemThatFailsForGoodUndoesTheOthersEachOnItsOwnThenTheStepsBefore() {
        var state = machine.fanOut(due(), step: 1, items: .success(items), at: t0).state
        state = send(state, 3, .ok)
        // Item 1 is refused (out of stock) while item 2 is in flight.
        state = machine.beginAttempt(state, step: 5, at: t0).state
        state = send(state, 4, .declined)
        #expect(state.status == .compensating)
        #expect(state.failure?.step == "reserve[1]")
        #expect(state.steps[4].status == .failed)
        #expect(state.steps[3].status == .compensating && state.steps[3].dueAt == t0, "item 0 is undone at once")
        #expect(state.steps[1].status == .compensating)
        #expect(state.steps[0].status == .succeeded, "open waits until every item is settled")
        state = send(state, 3, .ok)
        #expect(state.steps[3].status == .compensated)
        #expect(state.steps[0].status == .succeeded, "item 2 is still in flight")
        // Item 2 succeeds after the run turned back: it is undone too.
        state = machine.finishAttempt(state, step: 5, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        #expect(state.steps[5].status == .compensating)
        state = send(state, 5, .ok)
        #expect(state.steps[1].status == .compensated)
        #expect(state.steps[0].status == .compensating)
        state = send(state, 0, .ok)
        #expect(state.status == .compensated)
        #expect(state.steps.map(\.status) == [.compensated, .compensated, .pending, .compensated, .failed, .compensated])
        #expect(machine.problems(in: state).isEmpty)
    }

    @Test func itemsNotSentWhenTheRunTurnsBackAreNeverSent() {
        var state = machine.fanOut(due(), step: 1, items: .success(items), at: t0).state
        state = send(state, 3, .declined)
        #expect(state.steps[4].status == .pending, "item 1 was due but not sent: it goes back to pending")
        #expect(state.steps[5].status == .pending)
        #expect(state.dueSteps(at: t0) == [0])
        state = send(state, 0, .ok)
        #expect(state.status == .compensated)
        #expect(state.steps[1].status == .failed)
    }

    @Test func tooManyItemsOrNoArrayFailTheStepWithNothingSent() {
        let many = [JSONValue](repeating: 1, count: SagaDefinition.maximumItems + 1)
        var state = machine.fanOut(due(), step: 1, items: .success(many), at: t0).state
        #expect(state.steps.count == 3, "no item was made")
        #expect(state.steps[1].status == .failed && state.steps[1].lastError == "forEach gave 1001 items, over the limit of 1000")
        #expect(state.status == .compensating && state.steps[0].status == .compensating)

        state = machine.fanOut(due(), step: 1, items: .failure(TemplateRenderError(message: "{{input.items}} is an object")), at: t0).state
        #expect(state.steps[1].status == .failed && state.failure?.reason == "{{input.items}} is an object")
    }

    @Test func noItemsIsASuccessWithNothingSent() {
        let transition = machine.fanOut(due(), step: 1, items: .success([]), at: t0)
        #expect(transition.state.steps[1].status == .succeeded)
        #expect(transition.state.dueSteps(at: t0) == [2])
        #expect(machine.problems(in: transition.state).isEmpty)
        // Turned back later, it has nothing to undo.
        var state = send(transition.state, 2, .declined)
        #expect(state.steps[0].status == .compensating)
        state = send(state, 0, .ok)
        #expect(state.status == .compensated)
    }

    @Test func aStoredRunWithItemsThatAreNotTheDefinitionsIsUnrunnable() {
        var state = machine.fanOut(due(), step: 1, items: .success(items), at: t0).state
        state.steps.append(StepState(name: "ship[0]"))
        #expect(machine.problems(in: state).map(\.description) == ["steps[6]: ship[0] is not the next item of one of the saga's forEach steps (reserve)"])
        var gap = machine.fanOut(due(), step: 1, items: .success(items), at: t0).state.steps
        gap.remove(at: 4)
        #expect(!machine.problems(in: RunState(id: "r", steps: gap)).isEmpty, "items numbered with a gap")
    }

    @Test func validationNamesWhereItemsAndAnswersMayBeRead() {
        func messages(_ steps: String) -> [String] {
            problems(#"{ "name": "s", "version": 1, "steps": ["# + steps + "] }").map { "\($0.path.map { "\($0)" } ?? ""): \($0.message)" }
        }
        let call = #""request": { "method": "POST", "url": "http://127.0.0.1:1/x" }"#
        #expect(messages(#"{ "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/{{item.id}}" } }"#) == [
            #"steps[0].request.url: {{item.id}} is the item of a forEach step's call, and this step declares no "forEach"; add "forEach": "{{input.items}}" to the step, or remove the reference"#
        ])
        #expect(messages(#"{ "name": "a", "forEach": "{{input.items}}", "# + call + #" }, { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/{{steps.a.response.body.id}}" } }"#).first?.contains(
            "step \"a\" runs once per item of its forEach, so it has one answer per item; read them as {{steps.a.responses[0].body…}}") == true)
        #expect(messages(#"{ "name": "a", "maxConcurrency": 5, "# + call + " }").first?.contains(#""maxConcurrency" bounds how many of a forEach step's calls run at once, and this step declares no "forEach""#) == true)
        #expect(messages(#"{ "name": "a", "forEach": "items: {{input.items}}", "# + call + " }").first?.contains("must be one whole reference") == true)
        #expect(messages(#"{ "name": "a", "forEach": "{{input.items}}", "approval": { "timeout": "1h" } }"#).first?.contains("needs a plain \"request\"") == true)
        #expect(messages(#"{ "name": "a", "forEach": "{{input.items}}", "when": { "value": "{{item.x}}", "exists": true }, "# + call + " }").first?.contains("\"when\" decides once for the whole step") == true)
        #expect(messages(#"{ "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/{{steps.a.responses[0].body.id}}" } }"#).first?.contains("declares no \"forEach\"") == true)
    }

    @Test func aForEachOverTheInputIsCheckedAtStart() throws {
        #expect(throws: InputError.self) { try machine.checkStart(input: ["items": ["sku": "a"]], environment: [:]) }
        do {
            try machine.checkStart(input: ["items": .array(.init(repeating: 1, count: 1001))], environment: [:])
            Issue.record("1001 items were accepted")
        } catch {
            #expect(error.problems == ["steps[1].forEach: {{input.items}} has 1001 items, over the limit of 1000 for one forEach; split the work over several runs"])
        }
        try machine.checkStart(input: ["items": .array(items)], environment: [:])
    }

    @Test func templatesReadTheItemItsAnswerAndEveryAnswer() throws {
        var context = TemplateContext(input: [:], runID: "r", env: [:], responses: ["reserve": .ok(["id": "res-1"])])
        context.element = ("reserve", 1, ["sku": "b"])
        context.itemResponses = ["reserve": [["status": 200, "body": ["id": "res-0"]], ["status": 200, "body": ["id": "res-1"]]]]
        #expect(try context.resolve(.item([.key("sku")])) == "b")
        #expect(try context.resolve(.index) == 1)
        #expect(try context.resolve(.stepIdempotencyKey(step: "reserve")) == "r:reserve[1]:forward", "each item has its own key")
        #expect(try context.resolve(.stepBody(step: "reserve", path: [.key("id")])) == "res-1", "its own answer")
        #expect(try context.resolve(.stepResponses(step: "reserve", path: [.index(0), .key("body"), .key("id")])) == "res-0")
        #expect(try TemplateString(parsing: "{{steps.reserve.responses[2].body.id}}").references == [.stepResponses(step: "reserve", path: [.index(2), .key("body"), .key("id")])])
        #expect(StepElement(name: "reserve[12]") == StepElement(step: "reserve", index: 12))
        #expect(StepElement(name: "reserve") == nil && StepElement(name: "[1]") == nil)
    }
}

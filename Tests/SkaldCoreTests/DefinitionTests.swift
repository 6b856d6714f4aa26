import Foundation
import Testing
@testable import SkaldCore
import SkaldTestSupport

@Suite(.timeLimit(.minutes(10))) struct DefinitionTests {
    @Test func parsesAValidSagaWithDefaultsMerged() throws {
        let definition = try saga(threeSteps)
        #expect(definition.name == "order")
        #expect(definition.steps.map(\.name) == ["a", "b", "c"])
        let a = definition.steps[0]
        #expect(a.request?.retry.maxAttempts == 3)
        #expect(a.request?.retry.jitter == RetryPolicy.Jitter.none)
        #expect(a.request?.timeout == RetryPolicy.defaultTimeout)
        // The compensation's own policy is merged over the compensation default, not the forward one.
        #expect(a.compensation?.retry.maxAttempts == 2)
        #expect(a.compensation?.retry.maxInterval == RetryPolicy.compensationDefault.maxInterval)
        #expect(definition.steps[2].compensation == nil)
    }

    @Test func contentHashIgnoresFormattingButNotContent() throws {
        let compact = try saga(#"{"name":"x","version":1,"steps":[{"name":"a","request":{"method":"GET","url":"http://h/a"}}]}"#)
        let spaced = try saga("{ \"version\": 1, \"name\": \"x\",\n \"steps\": [ {\"request\": {\"url\": \"http://h/a\", \"method\": \"GET\"}, \"name\": \"a\"} ] }")
        let changed = try saga(#"{"name":"x","version":1,"steps":[{"name":"a","request":{"method":"GET","url":"http://h/b"}}]}"#)
        #expect(compact.contentHash == spaced.contentHash)
        #expect(compact.contentHash != changed.contentHash)
    }

    @Test func malformedJSONGivesLineAndColumn() {
        let found = problems("{\n  \"name\": \"x\",\n  \"version\": 1\n  \"steps\": []\n}")
        #expect(found.count == 1)
        #expect(found.first?.location == SourceLocation(line: 4, column: 3))
        #expect(found.first?.message.contains("malformed JSON") == true)
    }

    @Test(arguments: [#"[1, 2]"#, #"{"dependencies": {}, "private": true}"#])
    func aFileThatIsNotASagaSaysSo(text: String) {
        let found = problems(text)
        #expect(found.count == 1)
        #expect(found.first?.message.contains("not a saga definition") == true)
    }

    @Test func reportsEveryProblemWithItsPath() {
        let text = """
            {
              "name": "bad name!", "version": 0, "colour": "blue",
              "defaults": { "timeout": "5 sec", "retry": { "maxAttempts": 0, "initialInterval": "20s", "maxInterval": "1s", "jiter": "full" } },
              "steps": [
                { "name": "a", "request": { "method": "post", "url": "ftp://x/a", "headers": { "Idempotency-Key": "k" } } },
                { "name": "a", "request": { "method": "GET", "url": "http://h/{{steps.c.response.body.id}}", "body": {"x": 1} } },
                { "name": "c", "request": { "url": "http://h/{{steps.c.response.status}}", "retries": 3 },
                  "compensation": { "method": "DELETE", "url": "http://h/{{stepz.c}}", "timeout": "2h" } }
              ]
            }
            """
        let found = problems(text)
        let byPath = Dictionary(grouping: found, by: { $0.path?.description ?? "" })
        func has(_ path: String, _ fragment: String) -> Bool {
            byPath[path]?.contains { $0.message.contains(fragment) } == true
        }
        #expect(has("name", "not a valid saga name"))
        #expect(has("version", "at least 1"))
        #expect(has("colour", "unknown field \"colour\""))
        #expect(has("defaults.timeout", "not a duration"))
        #expect(has("defaults.retry.maxAttempts", "from 1 to 100"))
        #expect(has("defaults.retry.jiter", "did you mean \"jitter\""))
        #expect(has("steps[0].request.method", "upper case: \"POST\""))
        #expect(has("steps[0].request.url", "not an http or https URL"))
        #expect(has("steps[0].request.headers.Idempotency-Key", "sets the Idempotency-Key header itself"))
        #expect(has("steps[1].name", "already used by steps[0]"))
        #expect(has("steps[1].request.body", "GET request carries no body"))
        #expect(has("steps[2].request", "\"method\" is required"))
        #expect(has("steps[2].request.retries", "did you mean \"retry\""))
        #expect(has("steps[2].compensation.url", "starts with \"stepz\""))
        #expect(has("steps[2].compensation.timeout", "longer than the limit"))
        // Every problem carries a line and column in the file.
        #expect(found.allSatisfy { $0.location != nil })
        #expect(found.first { $0.path?.description == "steps[0].request.url" }?.location?.line == 5)
    }

    @Test func referencesMustPointAtEarlierSteps() {
        let text = """
            { "name": "x", "version": 1, "steps": [
              { "name": "a", "request": { "method": "POST", "url": "http://h/{{steps.b.response.body.id}}" } },
              { "name": "b", "request": { "method": "POST", "url": "http://h/{{steps.b.response.status}}", "body": "{{steps.bb.response.body}}" },
                "compensation": { "method": "DELETE", "url": "http://h/{{steps.b.response.body.id}}/{{steps.a.response.body.id}}" } }
            ] }
            """
        let found = problems(text)
        #expect(found.map { $0.path?.description ?? "" }.sorted() == ["steps[0].request.url", "steps[1].request.body", "steps[1].request.url"])
        #expect(found.contains { $0.message.contains("runs after this one") })
        #expect(found.contains { $0.message.contains("own response") })
        #expect(found.contains { $0.message.contains("did you mean \"b\"") })
    }

    @Test func inputReferencesAreCheckedAgainstTheInputSchema() {
        let text = """
            { "name": "x", "version": 1,
              "inputSchema": { "type": "object", "properties": { "sku": { "type": "string" }, "address": { "type": "object", "properties": { "city": { "type": "string" } } } } },
              "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://h/{{input.skus}}", "body": { "c": "{{input.address.town}}", "ok": "{{input.address.city}}" } } } ] }
            """
        let found = problems(text)
        #expect(found.count == 2)
        #expect(found.contains { $0.path?.description == "steps[0].request.url" && $0.message.contains("did you mean \"sku\"") })
        #expect(found.contains { $0.path?.description == "steps[0].request.body.c" && $0.message.contains("input.address.town") })
    }

    @Test func retryBoundsAreChecked() {
        let found = problems("""
            { "name": "x", "version": 1, "steps": [ { "name": "a", "request": { "method": "GET", "url": "http://h/",
              "retry": { "initialInterval": "20s", "maxInterval": "2s", "backoffCoefficient": 50, "jitter": "some" } } } ] }
            """)
        #expect(found.contains { $0.message.contains("backoffCoefficient") })
        #expect(found.contains { $0.message.contains("\"none\" or \"full\"") })
        let ordering = problems("""
            { "name": "x", "version": 1, "steps": [ { "name": "a", "request": { "method": "GET", "url": "http://h/",
              "retry": { "initialInterval": "20s", "maxInterval": "2s" } } } ] }
            """)
        #expect(ordering.contains { $0.message.contains("longer than maxInterval") })
    }
}

@Suite(.timeLimit(.minutes(10))) struct InputCheckTests {
    let definition: SagaDefinition

    init() throws {
        definition = try saga("""
            { "name": "x", "version": 1,
              "inputSchema": { "type": "object", "required": ["sku", "quantity"], "properties": {
                  "sku": { "type": "string", "minLength": 2 }, "quantity": { "type": "integer", "minimum": 1 },
                  "note": { "type": "string" } } },
              "steps": [ { "name": "a", "request": { "method": "POST", "url": "{{env.SHOP_URL}}/r",
                "body": { "sku": "{{input.sku}}", "q": "{{input.quantity}}", "n": "{{input.note}}" } } } ] }
            """)
    }

    @Test func namesTheCallThatNeedsAMissingField() {
        #expect {
            try definition.checkStart(input: ["sku": "AB", "quantity": 1], environment: ["SHOP_URL": "http://127.0.0.1:1"])
        } throws: { error in
            (error as? InputError)?.problems == [
                "{{input.note}}: input has no field \"note\" (it has: quantity, sku); steps[0].request needs it, so add it to the input"
            ]
        }
    }

    @Test func acceptsAMatchingInput() throws {
        try definition.checkStart(input: ["sku": "AB", "quantity": 2, "note": "x"], environment: ["SHOP_URL": "http://127.0.0.1:1"])
    }

    @Test func explainsEveryMismatch() {
        #expect {
            try definition.checkStart(input: ["sku": "A", "quantity": "two", "note": "n"], environment: [:])
        } throws: { error in
            guard let problems = (error as? InputError)?.problems else { return false }
            return problems.contains { $0.contains("input.quantity must be an integer") }
                && problems.contains { $0.contains("input.sku must have at least 2 characters") }
                && problems.contains { $0.contains("SHOP_URL is not set") }
        }
    }
}

/// Every problem at once: the templates of a call are checked even when the call (or its step) has a structural problem.
@Suite(.timeLimit(.minutes(10))) struct EveryProblemAtOnceTests {
    @Test func templateProblemsAreReportedBesideStructuralOnes() {
        let found = problems("""
            { "name": "x", "version": 1,
              "inputSchema": { "type": "object", "properties": { "sku": { "type": "string" } } },
              "steps": [
                { "name": "a", "request": { "url": "http://h/{{input.skuu}}", "body": { "q": "{{input.qty}}" } } },
                { "name": "b", "request": { "method": "POST", "url": "http://h/{{input.skuu2}}", "retry": { "maxAttempts": 0 } },
                  "compensation": { "method": "DELETE", "url": "http://h/{{steps.nope.idempotencyKey}}" } },
                { "name": "c d", "request": { "method": "POST", "url": "http://h/{{input.skuu3}}" } }
              ] }
            """)
        let paths = found.compactMap { $0.path?.description }
        #expect(paths.contains("steps[0].request"), "method is missing")
        #expect(paths.contains("steps[0].request.url"), "the undeclared input in a call without a method")
        #expect(paths.contains("steps[0].request.body.q"))
        #expect(paths.contains("steps[1].request.retry.maxAttempts"))
        #expect(paths.contains("steps[1].request.url"), "the undeclared input in a call with a bad retry")
        #expect(paths.contains("steps[1].compensation.url"), "the unknown step in the compensation of a step that cannot be built")
        #expect(paths.contains("steps[2].name"))
        #expect(paths.contains("steps[2].request.url"), "the undeclared input of a step with a bad name")
        #expect(found.count == 8, "\(found.map(\.description))")
    }
}

/// Warnings are shown with the errors, not only once every error is fixed; an optional input field a template reads
/// is one.
@Suite(.timeLimit(.minutes(10))) struct DefinitionWarningTests {
    static let readsOwnResponse = """
        { "name": "w", "version": 1, "steps": [
          { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" },
            "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a/{{steps.a.response.body.id}}" } } ] }
        """

    @Test func warningsComeWithTheErrors() {
        let broken = Self.readsOwnResponse.replacingOccurrences(of: "\"version\": 1", with: "\"version\": 1, \"colour\": \"blue\"")
        do {
            _ = try DefinitionParser.parse(Array(broken.utf8), file: "w.json")
            Issue.record("an unknown field was accepted")
        } catch {
            #expect(error.problems.contains { $0.message.contains("colour") })
            #expect(error.warnings.count == 1)
            #expect(error.warningLines.first?.hasPrefix("w.json:3:") == true, "\(error.warningLines)")
            #expect(error.warningLines.first?.contains("warning: steps[0].compensation: the compensation reads this step's own response") == true)
        }
    }

    @Test func aTemplateThatReadsAnOptionalInputFieldIsWarnedAbout() throws {
        let text = """
            { "name": "o", "version": 1,
              "inputSchema": { "type": "object", "required": ["id"],
                "properties": { "id": { "type": "string" }, "note": { "type": "string" },
                  "customer": { "type": "object", "properties": { "email": { "type": "string" } } } } },
              "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a/{{input.id}}",
                "body": { "note": "{{input.note}}", "to": "{{input.customer.email}}" } } } ] }
            """
        let warnings = try saga(text).warnings.map(\.description)
        #expect(warnings.count == 2, "\(warnings)")
        #expect(warnings.contains { $0.contains("{{input.note}} reads input.note, which inputSchema does not require") })
        #expect(warnings.contains { $0.contains("{{input.customer.email}} reads input.customer") })
        #expect(!warnings.contains { $0.contains("input.id") })
    }
}

import Testing
@testable import SkaldCore
import SkaldTestSupport

@Suite(.timeLimit(.minutes(10))) struct TemplateTests {
    let context = TemplateContext(
        input: ["sku": "MUG 1", "quantity": 2, "items": [["id": "i0"], ["id": "i1"]], "address": ["city": "London"]],
        runID: "R1", env: ["BASE": "http://127.0.0.1:9/api"],
        responses: ["reserve": StepResponse(status: 201, body: ["id": "res/7", "total": 12.5]), "text": StepResponse(status: 200, body: "plain")])

    @Test func parsesEveryReferenceKind() throws {
        let template = try TemplateString(
            parsing: "{{input.items[1].id}} {{input.items.0.id}} {{steps.reserve.response.status}} {{steps.reserve.response.body.id}} {{run.id}} {{env.BASE}}")
        #expect(template.references == [
            .input([.key("items"), .index(1), .key("id")]), .input([.key("items"), .index(0), .key("id")]),
            .stepStatus(step: "reserve"), .stepBody(step: "reserve", path: [.key("id")]), .runID, .env("BASE"),
        ])
    }

    @Test(arguments: [
        ("{{input.sku", "without a closing"),
        ("{{}}", "empty"),
        ("{{inputs.sku}}", "did you mean \"input\""),
        ("{{run.name}}", "only run field"),
        ("{{env.1BAD}}", "variable name"),
        ("{{steps.a.status}}", "steps.NAME.response"),
        ("{{steps.a.response.headers}}", "\"status\" and \"body\""),
        ("{{input..a}}", "empty path segment"),
        ("{{input.a[x]}}", "array indexes"),
    ])
    func rejectsBadSyntax(text: String, fragment: String) {
        #expect {
            _ = try TemplateString(parsing: text)
        } throws: { error in
            (error as? TemplateSyntaxError)?.message.contains(fragment) == true
        }
    }

    @Test func wholeValueTemplatesKeepTheirType() throws {
        let body = TemplateValue.object([
            "quantity": .string(try TemplateString(parsing: "{{input.quantity}}")),
            "address": .string(try TemplateString(parsing: "{{ input.address }}")),
            "label": .string(try TemplateString(parsing: "qty {{input.quantity}} of {{input.sku}}")),
            "total": .string(try TemplateString(parsing: "{{steps.reserve.response.body.total}}")),
            "fixed": .literal(["a": true]),
        ])
        let rendered = try context.render(body)
        #expect(rendered == ["quantity": 2, "address": ["city": "London"], "label": "qty 2 of MUG 1", "total": 12.5, "fixed": ["a": true]])
    }

    @Test func urlValuesArePercentEncodedButEnvironmentIsNot() throws {
        let url = try TemplateString(parsing: "{{env.BASE}}/reservations/{{steps.reserve.response.body.id}}?sku={{input.sku}}")
        #expect(try context.render(url, encodingForURL: true) == "http://127.0.0.1:9/api/reservations/res%2F7?sku=MUG%201")
    }

    @Test(arguments: [
        ("{{input.missing}}", "input has no field \"missing\""),
        ("{{input.items[5].id}}", "has 2 items"),
        ("{{input.sku.x}}", "is a string, not an object"),
        ("{{steps.text.response.body.id}}", "response body of step \"text\" is a string"),
        ("{{steps.later.response.status}}", "has no response (it has not succeeded"),
        ("{{env.NOPE}}", "NOPE is not set"),
    ])
    func explainsWhatCannotBeResolved(text: String, fragment: String) throws {
        let template = try TemplateString(parsing: text)
        #expect {
            _ = try context.render(template)
        } throws: { error in
            (error as? TemplateRenderError)?.message.contains(fragment) == true
        }
    }
}

/// `{{reference ?? default}}`: a value for a reference whose field or response is not there.
@Suite(.timeLimit(.minutes(10))) struct TemplateDefaultTests {
    @Test func aDefaultStandsInForWhatIsNotThere() throws {
        let note = try TemplateString(parsing: "note: {{input.note ?? \"none\"}}")
        let empty = TemplateContext(input: [:], runID: "r", env: [:])
        #expect(try empty.render(note) == "note: none")
        #expect(try TemplateContext(input: ["note": "gift"], runID: "r", env: [:]).render(note) == "note: gift")
        // A whole reference keeps the default's type, as it keeps the value's.
        let count = TemplateValue.string(try TemplateString(parsing: "{{input.count ?? 0}}"))
        #expect(try empty.render(count) == .int(0))
        let id = TemplateValue.string(try TemplateString(parsing: "{{steps.kyc.response.body.id ?? null}}"))
        #expect(try empty.render(id) == .null)
        #expect(try TemplateString(parsing: "{{input.a ?? \"\"}}/{{input.b}}").requiredReferences == [.input([.key("b")])])
    }

    @Test func aDefaultThatIsNotJSONIsRefusedWithWhatToWrite() {
        #expect(throws: TemplateSyntaxError.self) { try TemplateString(parsing: "{{input.note ?? none}}") }
        #expect(throws: TemplateSyntaxError.self) { try TemplateString(parsing: "{{input.note ??}}") }
    }

    @Test func aFieldWithADefaultNeedNotBeInTheInputNorRequired() throws {
        let definition = try saga("""
            { "name": "d", "version": 1,
              "inputSchema": { "type": "object", "required": ["id"], "properties": { "id": { "type": "string" }, "note": { "type": "string" } } },
              "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a/{{input.id}}", "body": { "note": "{{input.note ?? \\"\\"}}" } } } ] }
            """)
        #expect(definition.warnings.isEmpty, "\(definition.warnings)")
        try definition.checkStart(input: ["id": "1"], environment: [:])
    }
}

/// `inputSchema` `default`: a member left out of the input takes it when the run starts.
@Suite(.timeLimit(.minutes(10))) struct InputDefaultTests {
    @Test func aSchemaDefaultFillsAMissingMember() throws {
        let definition = try saga("""
            { "name": "d", "version": 1,
              "inputSchema": { "type": "object", "required": ["id"], "properties": {
                "id": { "type": "string" }, "note": { "type": "string", "default": "n/a" },
                "shipping": { "type": "object", "default": {}, "properties": { "speed": { "type": "string", "default": "standard" } } } } },
              "steps": [ { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a/{{input.id}}",
                "body": { "note": "{{input.note}}", "speed": "{{input.shipping.speed}}" } } } ] }
            """)
        #expect(definition.warnings.isEmpty, "\(definition.warnings)")
        let filled = try #require(definition.inputSchema).withDefaults(["id": "1"])
        #expect(filled == ["id": "1", "note": "n/a", "shipping": ["speed": "standard"]])
        #expect(try #require(definition.inputSchema).withDefaults(["id": "1", "note": "gift"])["note"] == "gift")
        try definition.checkStart(input: ["id": "1"], environment: [:])
    }
}

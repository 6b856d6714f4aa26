import Foundation
import SkaldAPI
import SkaldCore
import SkaldTestSupport
import Synchronization
import Testing

@testable import SkaldServer

/// The document (`docs/openapi.json`) against the API's types (`SkaldAPI`), mechanically: every object the document
/// describes, in every answer and request body, has exactly the fields of the type the server sends or reads there,
/// and every such object is checked (an object the table below does not name fails the test too).
@Suite(.timeLimit(.minutes(1)))
struct APIContractTests {
    /// Each operation's answers and request body, by the type that is sent or read.
    @Test func everyObjectInTheDocumentHasTheFieldsOfItsType() throws {
        let contract = try Contract()
        let runAnswers = ["startRun", "getRun", "cancelRun", "retryRun", "resolveRun", "abandonRun", "revertRun", "approveStep", "rejectStep"]
        for operation in runAnswers {
            for status in contract.statuses(operation).filter({ $0.hasPrefix("2") }) {
                contract.checkRun(try contract.answer(operation, status), "\(operation) \(status)")
            }
        }
        let runs = try contract.answer("listRuns", "200")
        contract.check(RunsPage.self, runs, [], "listRuns 200")
        contract.check(RunSummaryView.self, runs, ["runs", "[]"], "listRuns 200")
        contract.checkFailuresAndLinks(runs, ["runs", "[]"], "listRuns 200")

        let events = try contract.answer("getRunEvents", "200")
        contract.check(EventsPage.self, events, [], "getRunEvents 200")
        contract.check(EventView.self, events, ["events", "[]"], "getRunEvents 200")

        for (operation, status) in [("getDefinition", "200"), ("registerDefinition", "200"), ("registerDefinition", "201")] {
            contract.checkDefinition(try contract.answer(operation, status), [], "\(operation) \(status)")
        }
        let definitions = try contract.answer("listDefinitions", "200")
        contract.check(DefinitionsPage.self, definitions, [], "listDefinitions 200")
        contract.checkDefinition(definitions, ["definitions", "[]"], "listDefinitions 200")

        let participants = try contract.answer("listParticipants", "200")
        contract.check(ParticipantsPage.self, participants, [], "listParticipants 200")
        contract.check(ParticipantView.self, participants, ["participants", "[]"], "listParticipants 200")
        let settings = ["participants", "[]", "settings"]
        contract.check(ParticipantSettingsView.self, participants, settings, "listParticipants 200")
        contract.check(CircuitBreakerView.self, participants, settings + ["circuitBreaker"], "listParticipants 200")
        contract.check(BulkheadView.self, participants, settings + ["bulkhead"], "listParticipants 200")
        contract.check(RateLimitView.self, participants, settings + ["rateLimit"], "listParticipants 200")

        contract.check(CountsView.self, try contract.answer("countRuns", "200"), [], "countRuns 200")
        contract.check(CallbackAnswer.self, try contract.answer("postCallback", "200"), [], "postCallback 200")
        for status in ["200", "503"] {
            contract.check(HealthView.self, try contract.answer("health", status), [], "health \(status)")
        }
        contract.check(ProbeView.self, try contract.answer("healthLive", "200"), [], "healthLive 200")
        for status in ["200", "503"] {
            contract.check(ProbeView.self, try contract.answer("healthReady", status), [], "healthReady \(status)")
        }

        // Every error answer that the document describes is the error body.
        for operation in Endpoint.api.map(\.operationID) where !operation.hasPrefix("health") {
            for status in contract.statuses(operation).filter({ $0.hasPrefix("4") || $0.hasPrefix("5") }) {
                guard let schema = try? contract.answer(operation, status) else { continue }
                contract.check(ErrorBody.self, schema, [], "\(operation) \(status)")
                contract.check(ErrorView.self, schema, ["error"], "\(operation) \(status)")
            }
        }

        let requests: [(String, any APIObject.Type)] = [
            ("startRun", StartRunRequest.self), ("cancelRun", CancelRunRequest.self), ("retryRun", RetryRunRequest.self),
            ("resolveRun", ResolveRunRequest.self), ("abandonRun", AbandonRunRequest.self), ("revertRun", RevertRunRequest.self), ("approveStep", DecideStepRequest.self),
            ("rejectStep", DecideStepRequest.self), ("postCallback", CallbackRequest.self),
        ]
        for (operation, type) in requests {
            contract.check(type.fields, try contract.requestBody(operation), [], "\(operation) request", type: "\(type)")
        }

        // Both ways: no object in an answer or a request body (the saga definition aside, checked against its own
        // schema below) goes unchecked.
        let unchecked = contract.objects().subtracting(contract.checked.withLock { $0 })
        #expect(unchecked.isEmpty, "objects in docs/openapi.json that no API type is checked against: \(unchecked.sorted())")
    }

    /// `POST /v1/definitions` takes what `Sagas/schema/saga.schema.json` describes: the document carries that schema
    /// itself (`scripts/sync-saga-schema` copies it), so the two cannot drift apart.
    @Test func theDefinitionSchemaIsTheSagaSchema() throws {
        let contract = try Contract()
        #expect(try contract.requestBody("registerDefinition") == ["$ref": "#/components/schemas/SagaDefinition"])
        var schema = try JSONParser.parse(String(contentsOf: packageRoot.appendingPathComponent("Sagas/schema/saga.schema.json"), encoding: .utf8))
        guard case .object(var top) = schema else { Issue.record("the saga schema is not an object"); return }
        let definitions = top.removeValue(forKey: "$defs")?.objectValue ?? [:]
        top["$schema"] = nil
        top["$id"] = nil
        schema = .object(top)
        func moved(_ value: JSONValue) -> JSONValue {
            switch value {
            case .object(let members):
                return .object(
                    members.reduce(into: [String: JSONValue]()) { out, member in
                        if member.key == "$ref", let target = member.value.stringValue, target.hasPrefix("#/$defs/") {
                            out[member.key] = .string("#/components/schemas/SagaDefinition." + target.dropFirst("#/$defs/".count))
                        } else {
                            out[member.key] = moved(member.value)
                        }
                    })
            case .array(let items): return .array(items.map(moved))
            default: return value
            }
        }
        let schemas = try #require(contract.document["components"]?["schemas"]?.objectValue)
        #expect(schemas["SagaDefinition"] == moved(schema), "docs/openapi.json's SagaDefinition differs from the saga schema: run scripts/sync-saga-schema")
        for (name, definition) in definitions {
            #expect(schemas["SagaDefinition.\(name)"] == moved(definition), "SagaDefinition.\(name) differs: run scripts/sync-saga-schema")
        }
        let copied = Set(schemas.keys.filter { $0.hasPrefix("SagaDefinition.") })
        #expect(copied == Set(definitions.keys.map { "SagaDefinition.\($0)" }))
    }

    @Test func aDecodedRequestNamesTheFieldThatIsWrong() throws {
        #expect(throws: DecodingError.self) { try StartRunRequest(json: ["version": 1]) }
        do {
            _ = try StartRunRequest(json: ["saga": "checkout", "version": "two"])
            Issue.record("a version that is text was read")
        } catch let error as DecodingError {
            #expect(JSONValueCoding.describe(error) == "\"version\" must be a whole number, not a string")
        }
        do {
            _ = try StartRunRequest(json: ["saga": "checkout", "version": 1.5])
            Issue.record("a version of 1.5 was read")
        } catch let error as DecodingError {
            #expect(JSONValueCoding.describe(error) == "\"version\" must be a whole number, not 1.5")
        }
        do {
            _ = try JSONValueCoding.decode(RunsPage.self, from: ["runs": [["id": 1]], "nextCursor": .null])
            Issue.record("a run whose id is a number was read")
        } catch let error as DecodingError {
            #expect(JSONValueCoding.describe(error) == "\"runs[0].id\" must be a string, not a number")
        }
    }

    /// What the server sends reads back as the same value, integers beyond 64 bits and nulls included.
    @Test func aShapeRoundTripsThroughJSON() throws {
        let big = JSONValue.bigInteger("123456789012345678901234567890")
        let at = Date(timeIntervalSince1970: 1_765_000_000.125)
        let step = StepView(
            name: "charge", status: "succeeded", attempts: 1, compensationAttempts: 0, nextAttemptAt: nil,
            response: ResponseView(status: 200, body: ["id": big]), lastError: nil, outcomeUnknown: false, resolution: nil,
            idempotencyKey: "k", waiting: nil, attemptLog: [])
        let json = step.json()
        #expect(json["nextAttemptAt"] == .null, "a Nullable field is sent as null")
        #expect(json["response"]?["body"]?["id"] == big)
        let back = try StepView(json: json)
        #expect(back.response?.body["id"] == big && back.nextAttemptAt == nil)
        let resolution = ResolutionView(by: "ana", note: "done", at: at)
        #expect(resolution.json()["at"] == "2025-12-06T05:46:40.125Z")
        #expect(abs(try ResolutionView(json: resolution.json()).at.timeIntervalSince(at)) < 0.001)
        let definition = DefinitionView(name: "a", version: 1, hash: "h", registeredAt: at, description: nil, steps: [])
        #expect(definition.json()["definition"] == nil, "a plain optional is left out")
        #expect(definition.json()["description"] == .null)
    }
}

/// The document, read for its schemas.
final class Contract: Sendable {
    let document: JSONValue
    /// The objects checked so far, as `operation status: path`.
    let checked = Mutex<Set<String>>([])

    init() throws {
        document = try JSONParser.parse(OpenAPIDocument.text)
    }

    func operation(_ id: String) -> JSONValue? {
        for (_, item) in document["paths"]?.objectValue ?? [:] {
            for (_, operation) in item.objectValue ?? [:] where operation["operationId"]?.stringValue == id { return operation }
        }
        return nil
    }

    func statuses(_ operation: String) -> [String] {
        Array((self.operation(operation)?["responses"]?.objectValue ?? [:]).keys)
    }

    struct Missing: Error, CustomStringConvertible { var description: String }

    func answer(_ operation: String, _ status: String) throws -> JSONValue {
        guard let schema = self.operation(operation)?["responses"]?[status]?["content"]?["application/json"]?["schema"] else {
            throw Missing(description: "\(operation) has no JSON answer \(status)")
        }
        return schema
    }

    func requestBody(_ operation: String) throws -> JSONValue {
        guard let schema = self.operation(operation)?["requestBody"]?["content"]?["application/json"]?["schema"] else {
            throw Missing(description: "\(operation) has no JSON request body")
        }
        return schema
    }

    /// The schema with references followed, `allOf` merged and a `oneOf`/`anyOf` with `null` reduced to its other case.
    func resolved(_ schema: JSONValue) -> JSONValue {
        if let target = schema["$ref"]?.stringValue {
            let name = String(target.dropFirst("#/components/schemas/".count))
            return resolved(document["components"]?["schemas"]?[name] ?? .null)
        }
        if let parts = schema["allOf"]?.arrayValue {
            var properties: [String: JSONValue] = [:]
            for part in parts { properties.merge(resolved(part)["properties"]?.objectValue ?? [:]) { _, last in last } }
            return ["type": "object", "properties": .object(properties)]
        }
        for key in ["oneOf", "anyOf"] {
            if let cases = schema[key]?.arrayValue, case let others = cases.filter({ $0["type"] != "null" }), others.count == 1 {
                return resolved(others[0])
            }
        }
        return schema
    }

    /// The schema at `path` (property names, `[]` for an array's items).
    func schema(_ root: JSONValue, _ path: [String]) -> JSONValue? {
        var schema = resolved(root)
        for step in path {
            guard let next = step == "[]" ? schema["items"] : schema["properties"]?[step] else { return nil }
            schema = resolved(next)
        }
        return schema
    }

    func check<Shape: APIObject>(_ type: Shape.Type, _ root: JSONValue, _ path: [String], _ place: String) {
        check(Shape.fields, root, path, place, type: "\(Shape.self)")
    }

    func check(_ fields: [String], _ root: JSONValue, _ path: [String], _ place: String, type: String) {
        let at = "\(place): \(path.isEmpty ? "(the body)" : path.joined(separator: "."))"
        guard let schema = schema(root, path), let properties = schema["properties"]?.objectValue else {
            Issue.record("\(at): the document describes no object there, where the API sends \(type)")
            return
        }
        checked.withLock { _ = $0.insert(at) }
        let documented = Set(properties.keys), declared = Set(fields)
        #expect(
            documented == declared,
            "\(at): only in docs/openapi.json: \(documented.subtracting(declared).sorted()); only in \(type): \(declared.subtracting(documented).sorted())")
    }

    func checkFailuresAndLinks(_ root: JSONValue, _ path: [String], _ place: String) {
        for failure in ["failure", "compensationFailure", "stuck"] { check(FailureView.self, root, path + [failure], place) }
        check(LinksView.self, root, path + ["links"], place)
    }

    func checkGraph(_ root: JSONValue, _ path: [String], _ place: String) {
        check(GraphView.self, root, path + ["graph"], place)
        check(GraphStepView.self, root, path + ["graph", "steps", "[]"], place)
    }

    func checkRun(_ root: JSONValue, _ place: String) {
        check(RunView.self, root, [], place)
        checkFailuresAndLinks(root, [], place)
        checkGraph(root, [], place)
        check(UnrunnableView.self, root, ["unrunnable"], place)
        let step = ["steps", "[]"]
        check(StepView.self, root, step, place)
        check(ResponseView.self, root, step + ["response"], place)
        check(ResolutionView.self, root, step + ["resolution"], place)
        check(WaitView.self, root, step + ["waiting"], place)
        check(StepWaitView.self, root, step + ["wait"], place)
        check(AttemptView.self, root, step + ["attemptLog", "[]"], place)
        check(ItemsView.self, root, step + ["items"], place)
        check(ParentView.self, root, ["parent"], place)
    }

    func checkDefinition(_ root: JSONValue, _ path: [String], _ place: String) {
        check(DefinitionView.self, root, path, place)
        checkGraph(root, path, place)
        check(ProblemView.self, root, path + ["warnings", "[]"], place)
    }

    /// Every object with properties in every JSON answer and request body, as `operation status: path`; the saga
    /// definition (a request body of its own schema) aside.
    func objects() -> Set<String> {
        var found: Set<String> = []
        // `within`: the schemas referred to on the way here; a step's items are steps, so a reference may come round again.
        func walk(_ schema: JSONValue, _ path: [String], _ place: String, within: Set<String> = []) {
            var within = within
            if let reference = schema["$ref"]?.stringValue {
                guard within.insert(reference).inserted else { return }
            }
            let schema = resolved(schema)
            if let items = schema["items"] { walk(items, path + ["[]"], place, within: within) }
            guard let properties = schema["properties"]?.objectValue else { return }
            found.insert("\(place): \(path.isEmpty ? "(the body)" : path.joined(separator: "."))")
            for (name, property) in properties { walk(property, path + [name], place, within: within) }
        }
        for endpoint in Endpoint.api {
            guard let operation = operation(endpoint.operationID) else { continue }
            for (status, answer) in operation["responses"]?.objectValue ?? [:] {
                if let schema = answer["content"]?["application/json"]?["schema"] { walk(schema, [], "\(endpoint.operationID) \(status)") }
            }
            if endpoint.operationID != "registerDefinition", let body = operation["requestBody"]?["content"]?["application/json"]?["schema"] {
                walk(body, [], "\(endpoint.operationID) request")
            }
        }
        return found
    }
}

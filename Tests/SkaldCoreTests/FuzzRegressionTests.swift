import Foundation
import Testing
@testable import SkaldCore
import SkaldTestSupport

/// Inputs the fuzzers (Fuzz/, scripts/fuzz) found problems with, replayed through the same checks.
@Suite(.timeLimit(.minutes(10))) struct FuzzRegressionTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/regressions")

    static func inputs(_ kind: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent(kind).path)) ?? []).sorted()
    }

    @Test(arguments: inputs("definition"))
    func aDefinitionTheFuzzerFoundIsHandled(name: String) throws {
        let bytes = Array(try Data(contentsOf: Self.folder.appendingPathComponent("definition/\(name)")))
        let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
        let definition = Array(bytes[..<split])
        if let value = try? JSONParser.parse(definition).value {
            #expect(try JSONParser.parse(value.jsonText) == value, "the JSON round trip changed the value")
        }
        do {
            let saga = try DefinitionParser.parse(definition, file: "fuzz.json")
            let machine = SagaMachine(saga: saga)
            _ = Planner.plan(saga)
            if split < bytes.endIndex, let input = try? JSONParser.parse(Array(bytes[(split + 1)...])).value {
                _ = try? machine.checkStart(input: input, environment: ["URL": "http://127.0.0.1:1"])
            }
        } catch {
            #expect(!error.problems.isEmpty)
            #expect(error.problems.allSatisfy { $0.path != nil || $0.location != nil })
        }
    }

    @Test(arguments: inputs("template").filter { !$0.hasPrefix(".") })
    func aTemplateTheFuzzerFoundIsHandled(name: String) throws {
        let bytes = Array(try Data(contentsOf: Self.folder.appendingPathComponent("template/\(name)")))
        let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
        let value = split < bytes.endIndex ? (try? JSONParser.parse(Array(bytes[(split + 1)...])).value) ?? .null : .null
        guard let template = try? TemplateString(parsing: String(decoding: bytes[..<split], as: UTF8.self)) else { return }
        let context = TemplateContext(input: value, runID: "R1", env: ["URL": "http://127.0.0.1:1"], responses: ["a": StepResponse(status: 201, body: value)])
        _ = try? context.render(template)
        _ = try? context.render(template, encodingForURL: true)
        _ = try? context.masked.render(template, encodingForURL: true)
    }

    @Test func theRegressionsAreThere() {
        #expect(!Self.inputs("definition").isEmpty)
    }

    @Test func integralNumbersEqualWhateverTheirSpelling() throws {
        #expect(try JSONParser.parse("2.0") == JSONParser.parse("2"))
        #expect(Set([try JSONParser.parse("2.0"), try JSONParser.parse("2")]).count == 1)
        #expect(try JSONParser.parse("2.5") != JSONParser.parse("2"))
        #expect(JSONValue.bigInteger("123456789012345678901234") != .double(1.2345678901234568e23))
    }
}

import Foundation
import Testing
@testable import SkaldCore

/// Inputs the fuzzers (Fuzz/, scripts/fuzz) found problems with, replayed through the same checks.
@Suite struct FuzzRegressionTests {
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
            _ = SagaMachine(saga: saga)
            _ = Planner.plan(saga)
        } catch {
            #expect(!error.problems.isEmpty)
            #expect(error.problems.allSatisfy { $0.path != nil || $0.location != nil })
        }
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

import Foundation
import Testing
@testable import SkaldCore
import SkaldTestSupport

/// Input from outside (an API body, a definition file, a participant's answer) can neither trap the process nor
/// cost far more than its size.
@Suite(.timeLimit(.minutes(10))) struct HostileInputTests {
    @Test(arguments: ["99999999999d", "9999999999h", "1000000000000000000000s", "106751992d", "36501d"])
    func aDurationBeyondTheLimitIsRefusedNotConverted(text: String) {
        #expect(DurationText.check(text) == .failure(.tooLong))
        #expect(DurationText.parse(text) == nil)
    }

    @Test func durationsUpToTheLimitStillParse() {
        #expect(DurationText.parse("36500d") == .seconds(36500 * 86_400))
        #expect(DurationText.parse("1m30s") == .seconds(90))
        #expect(DurationText.check("soon") == .failure(.notADuration))
        #expect(Duration(secondsValue: .infinity) == DurationText.maximum)
        #expect(Duration(secondsValue: .nan) == .zero)
    }

    @Test func aTimeoutTooLongForAnyClockIsALocatedProblem() {
        let found = problems(#"{"name": "t", "version": 1, "steps": [{"name": "s", "request": {"method": "GET", "url": "http://127.0.0.1:1/", "timeout": "9999999999h"}}]}"#)
        #expect(found.count == 1)
        #expect(found.first?.path?.description == "steps[0].request.timeout")
        #expect(found.first?.message.contains("longer than the limit") == true)
    }

    @Test func integersBeyondSixtyFourBitsAreKeptDigitForDigit() throws {
        let id = "123456789012345678901234567890"
        let value = try JSONParser.parse(#"{"id": \#(id), "small": 7}"#)
        #expect(value["id"] == .bigInteger(id))
        #expect(value.jsonText == #"{"id":\#(id),"small":7}"#)
        // Sent back through a template, as a compensation does with the id a participant returned.
        let context = TemplateContext(input: [:], runID: "R", env: [:], responses: ["s": StepResponse(status: 200, body: value)])
        let body = try context.render(TemplateValue.object(["refund": .string(try TemplateString(parsing: "{{steps.s.response.body.id}}"))]))
        #expect(body.jsonText == #"{"refund":\#(id)}"#)
    }

    @Test func numbersThatCannotBeRepresentedAreRefusedWithTheirLocation() {
        #expect {
            _ = try JSONParser.parse("{\"minimum\": 1e400}")
        } throws: { error in
            (error as? JSONSyntaxError)?.location == SourceLocation(line: 1, column: 13)
        }
        #expect(throws: JSONSyntaxError.self) { _ = try JSONParser.parse(String(repeating: "9", count: 101)) }
    }

    @Test func locationsOfADeeplyNestedLargeDocumentAreBounded() throws {
        // 200 levels of nesting around 300,000 numbers: every value used to get its full 200-component path.
        let depth = 200
        let text = String(repeating: "[", count: depth) + Array(repeating: "0", count: 300_000).joined(separator: ",")
            + String(repeating: "]", count: depth)
        let document = try JSONParser.parse(Array(text.utf8), options: .init(recordsLocations: true))
        let options = JSONParser.Options(recordsLocations: true)
        #expect(document.locations.count <= options.maximumLocations)
        #expect(document.locations.keys.allSatisfy { $0.components.count <= options.maximumLocationDepth })
    }

    @Test func aProblemDeeperThanTheRecordedLocationsIsPlacedAtItsNearestAncestor() {
        let deep = String(repeating: #"{"x":"#, count: 30) + "1" + String(repeating: "}", count: 30)
        let found = problems(#"{"name": "t", "version": 1, "inputSchema": \#(deep), "steps": [{"name": "s", "request": {"method": "GET", "url": "http://127.0.0.1:1/"}}]}"#)
        #expect(!found.isEmpty)
        #expect(found.allSatisfy { $0.location != nil })
    }

    @Test func aSagaWithMoreStepsThanTheLimitIsRefusedAtSteps() {
        let steps = (0...DefinitionParser.maximumSteps).map { #"{"name": "s\#($0)", "request": {"method": "GET", "url": "http://127.0.0.1:1/"}}"# }
        let found = problems(#"{"name": "t", "version": 1, "steps": [\#(steps.joined(separator: ","))]}"#)
        #expect(found.count == 1)
        #expect(found.first?.path?.description == "steps")
        #expect(found.first?.message.contains("over the limit of \(DefinitionParser.maximumSteps)") == true)
    }

    @Test func theLargestAllowedChainBuildsItsMachineWithEveryDependent() throws {
        let steps = (0..<DefinitionParser.maximumSteps).map {
            #"{"name": "s\#($0)", "request": {"method": "GET", "url": "http://127.0.0.1:1/"}, "compensation": {"method": "DELETE", "url": "http://127.0.0.1:1/"}}"#
        }
        let definition = try saga(#"{"name": "t", "version": 1, "steps": [\#(steps.joined(separator: ","))]}"#)
        let machine = SagaMachine(saga: definition)
        #expect(machine.dependents[0].count == DefinitionParser.maximumSteps - 1)
        #expect(machine.dependents[DefinitionParser.maximumSteps - 1].isEmpty)
    }

    @Test func aPatternThatBacktracksWithoutEndIsStoppedAndSaysSo() throws {
        let schema = try saga(
            #"{"name": "t", "version": 1, "inputSchema": {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}}, "steps": [{"name": "s", "request": {"method": "GET", "url": "http://127.0.0.1:1/"}}]}"#
        ).inputSchema!
        let hostile = String(repeating: "a", count: 40) + "b"
        let found = schema.violations(of: ["code": .string(hostile)])
        #expect(found.count == 1)
        #expect(found.first?.contains("within the matching budget") == true, "\(found)")
        #expect(schema.violations(of: ["code": "aaaa"]).isEmpty)
        #expect(schema.violations(of: ["code": "b"]).first?.contains("must match the pattern") == true)
    }

    @Test func scanningALongValueOrManyValuesDoesNotSpendTheBudget() throws {
        let schema = try saga(
            #"{"name": "t", "version": 1, "inputSchema": {"type": "object", "properties": {"code": {"type": "string", "pattern": "[0-9]{5}"}, "emails": {"type": "array", "items": {"type": "string", "pattern": "@"}}}}, "steps": [{"name": "s", "request": {"method": "GET", "url": "http://127.0.0.1:1/"}}]}"#
        ).inputSchema!
        let long = String(repeating: "x", count: 20_000) + "12345"
        let emails = (0..<2_000).map { JSONValue.string("someone.with.a.long.name.\($0)@example.com") }
        #expect(schema.violations(of: ["code": .string(long), "emails": .array(emails)]).isEmpty)
        #expect(schema.violations(of: ["code": .string(String(repeating: "x", count: 20_000))]).first?.contains("must match the pattern") == true)
    }

    @Test func anOverlongPatternIsRefusedBeforeItIsCompiled() {
        let pattern = String(repeating: "(", count: 100_000)
        let found = problems(
            #"{"name": "t", "version": 1, "inputSchema": {"type": "object", "properties": {"code": {"type": "string", "pattern": "\#(pattern)"}}}, "steps": [{"name": "s", "request": {"method": "GET", "url": "http://127.0.0.1:1/"}}]}"#)
        #expect(found.first?.path?.description == "inputSchema.properties.code.pattern")
        #expect(found.first?.message.contains("over the limit of \(InputSchema.maximumPatternLength)") == true)
    }
}

import Testing
@testable import SkaldCore
import SkaldTestSupport

@Suite(.timeLimit(.minutes(10))) struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#"{"a": [1, -2.5, true, false, null, "x\ny\u00e9\ud83d\ude00"], "b": {"c": 12345678901}}"#)
        #expect(value["a"] == [1, -2.5, true, false, nil, "x\nyé😀"])
        #expect(value["b"]?["c"] == .int(12_345_678_901))
    }

    @Test func serialisesWithSortedKeysAndRoundTrips() throws {
        let value: JSONValue = ["z": 1, "a": ["q": "\"quoted\"\t"], "m": [2.5, nil, false]]
        #expect(value.jsonText == #"{"a":{"q":"\"quoted\"\t"},"m":[2.5,null,false],"z":1}"#)
        #expect(try JSONParser.parse(value.jsonText) == value)
        #expect(try JSONParser.parse(value.prettyText) == value)
    }

    @Test(arguments: [
        ("{\n  \"a\": 1,\n  \"b\": tru\n}", 3, 8, "expected a value"),
        ("{\"a\": 1,}", 1, 9, "expected a quoted key"),
        ("[1, 2", 1, 6, "not closed"),
        ("{\"a\" 1}", 1, 6, "expected ':'"),
        ("\"abc", 1, 5, "not closed"),
        ("01", 1, 2, "leading zero"),
        ("{} x", 1, 4, "after the end"),
        ("", 1, 1, "text ended"),
    ])
    func reportsLineAndColumn(text: String, line: Int, column: Int, fragment: String) {
        #expect {
            _ = try JSONParser.parse(text)
        } throws: { error in
            guard let error = error as? JSONSyntaxError else { return false }
            return error.location == SourceLocation(line: line, column: column) && error.message.contains(fragment)
        }
    }

    @Test func rejectsDuplicateKeysOnlyWhenAsked() throws {
        let text = Array(#"{"a": 1, "a": 2}"#.utf8)
        #expect(try JSONParser.parse(text).value == ["a": 2])
        #expect(throws: JSONSyntaxError.self) {
            try JSONParser.parse(text, options: .init(rejectsDuplicateKeys: true))
        }
    }

    @Test func recordsLocationsOfValues() throws {
        let document = try JSONParser.parse(Array("{\n  \"steps\": [\n    {\"name\": \"x\"}\n  ]\n}".utf8), options: .init(recordsLocations: true))
        #expect(document.locations[JSONPath.root.appending("steps").appending(0).appending("name")] == SourceLocation(line: 3, column: 14))
    }

    @Test func pathsPrintAsPeopleWriteThem() {
        let path = JSONPath.root.appending("steps").appending(2).appending("headers").appending("X Weird")
        #expect(path.description == #"steps[2].headers["X Weird"]"#)
        #expect(JSONPath.root.description == "$")
    }
}

@Suite(.timeLimit(.minutes(10))) struct SupportTests {
    @Test func sha256MatchesKnownVectors() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex(String(repeating: "a", count: 1000))
                == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test(arguments: [
        ("250ms", 250.0), ("5s", 5000.0), ("2m", 120_000.0), ("1h", 3_600_000.0), ("7d", 604_800_000.0), ("1m30s", 90_000.0), ("1.5s", 1500.0),
    ])
    func parsesDurations(text: String, milliseconds: Double) {
        #expect(DurationText.parse(text)?.milliseconds == milliseconds)
    }

    @Test(arguments: ["", "5", "5 s", "s", "5sec", "-1s", "1.2.3s"])
    func rejectsNonDurations(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test func formatsDurations() {
        #expect(DurationText.format(.milliseconds(250)) == "250ms")
        #expect(DurationText.format(.milliseconds(1200)) == "1.2s")
        #expect(DurationText.format(.seconds(125)) == "2m5s")
        #expect(DurationText.format(.seconds(7200)) == "2h")
    }
}

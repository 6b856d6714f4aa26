import Foundation

/// The subset of JSON Schema that a saga's `inputSchema` may use.
public final class InputSchema: Sendable {
    public static let keywords = [
        "type", "properties", "required", "items", "enum", "additionalProperties", "minimum", "maximum",
        "minLength", "maxLength", "pattern", "description", "title", "examples", "default", "format",
    ]
    static let typeNames = ["object", "array", "string", "number", "integer", "boolean", "null"]

    public let types: [String]?
    public let properties: [String: InputSchema]?
    public let required: [String]
    public let items: InputSchema?
    public let enumValues: [JSONValue]?
    public let additionalProperties: Bool
    public let minimum: Double?
    public let maximum: Double?
    public let minLength: Int?
    public let maxLength: Int?
    public let pattern: String?

    init(
        types: [String]?, properties: [String: InputSchema]?, required: [String], items: InputSchema?,
        enumValues: [JSONValue]?, additionalProperties: Bool, minimum: Double?, maximum: Double?,
        minLength: Int?, maxLength: Int?, pattern: String?
    ) {
        self.types = types
        self.properties = properties
        self.required = required
        self.items = items
        self.enumValues = enumValues
        self.additionalProperties = additionalProperties
        self.minimum = minimum
        self.maximum = maximum
        self.minLength = minLength
        self.maxLength = maxLength
        self.pattern = pattern
    }

    /// Whether a reference path into the input is declared by this schema.
    /// Returns nil when it is, or the part of the path that is not declared.
    func undeclaredPrefix(of path: [JSONPath.Component]) -> (walked: String, missing: String, known: [String])? {
        var node = self
        var walked = "input"
        for component in path {
            switch component {
            case .key(let key):
                guard let properties = node.properties else { return nil }
                guard let next = properties[key] else {
                    return (walked, key, properties.keys.sorted())
                }
                node = next
                walked += ".\(key)"
            case .index(let index):
                guard let items = node.items else { return nil }
                node = items
                walked += "[\(index)]"
            }
        }
        return nil
    }

    /// Every way `value` does not match, each as a sentence naming the path.
    public func violations(of value: JSONValue, at path: String = "input") -> [String] {
        var problems: [String] = []
        if let types, !types.contains(where: { Self.matches(value, type: $0) }) {
            let expected = types.count == 1 ? types[0] : types.joined(separator: " or ")
            return ["\(path) must be \(Self.article(expected)), but it is \(value.typeName)"]
        }
        if let enumValues, !enumValues.contains(value) {
            problems.append("\(path) must be one of \(enumValues.map(\.jsonText).joined(separator: ", ")), but it is \(value.jsonText)")
        }
        switch value {
        case .object(let members):
            for key in required where members[key] == nil {
                problems.append("\(path) lacks the required field \"\(key)\"")
            }
            for key in members.keys.sorted() {
                if let schema = properties?[key] {
                    problems += schema.violations(of: members[key]!, at: "\(path).\(key)")
                } else if !additionalProperties, properties != nil {
                    problems.append("\(path) has the field \"\(key)\", which inputSchema does not allow")
                }
            }
        case .array(let elements):
            if let items {
                for (i, element) in elements.enumerated() { problems += items.violations(of: element, at: "\(path)[\(i)]") }
            }
        case .string(let s):
            if let minLength, s.count < minLength { problems.append("\(path) must have at least \(minLength) characters") }
            if let maxLength, s.count > maxLength { problems.append("\(path) must have at most \(maxLength) characters") }
            if let pattern {
                switch Self.match(pattern, in: s) {
                case .matches: break
                case .doesNotMatch: problems.append("\(path) must match the pattern \(pattern)")
                case .tooCostly:
                    problems.append(
                        "\(path) could not be checked against the pattern \(pattern) within the matching budget (the pattern backtracks too much on this value); simplify the pattern or the value")
                }
            }
        case .int, .double, .bigInteger:
            let number = value.doubleValue!
            if let minimum, number < minimum { problems.append("\(path) must be at least \(JSONValue.double(minimum).jsonText)") }
            if let maximum, number > maximum { problems.append("\(path) must be at most \(JSONValue.double(maximum).jsonText)") }
        default:
            break
        }
        return problems
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null): true
        case ("number", .int), ("number", .double), ("number", .bigInteger), ("integer", .int), ("integer", .bigInteger): true
        case ("integer", .double(let d)): d.rounded() == d
        default: false
        }
    }

    /// The longest `pattern` a definition may declare.
    public static let maximumPatternLength = 1_000
    /// How many times the regular expression engine may report progress on one match before it is stopped.
    /// ICU reports progress after a fixed amount of matching work, so this is a bound on work, not on time:
    /// about 0.1 s here, far beyond any reasonable pattern and value, and far short of a pattern that
    /// backtracks exponentially (`(a+)+$` on a long run of `a`).
    static let matchingBudget = 1_000

    enum PatternMatch { case matches, doesNotMatch, tooCostly }

    /// Searches `text` for `pattern` (anywhere, as JSON Schema's `pattern` does), giving up past the budget.
    static func match(_ pattern: String, in text: String, budget: Int = matchingBudget) -> PatternMatch {
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return .doesNotMatch }
        var found = false
        var progress = 0
        expression.enumerateMatches(in: text, options: [.reportProgress], range: NSRange(text.startIndex..., in: text)) { result, _, stop in
            if result != nil {
                found = true
                stop.pointee = true
                return
            }
            progress += 1
            if progress > budget { stop.pointee = true }
        }
        if found { return .matches }
        return progress > budget ? .tooCostly : .doesNotMatch
    }

    static func article(_ type: String) -> String {
        type.first.map { "aeiou".contains($0) } == true ? "an \(type)" : "a \(type)"
    }
}

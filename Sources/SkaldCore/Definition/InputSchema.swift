import Foundation

/// The subset of JSON Schema that a saga's `inputSchema` may use.
public final class InputSchema: Sendable {
    public static let keywords = [
        "type", "properties", "required", "items", "enum", "additionalProperties", "minimum", "maximum",
        "minLength", "maxLength", "pattern", "description", "title", "examples", "default", "format", "writeOnly",
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
    /// `"writeOnly": true`: a sensitive value (a card number, a token), sent to the participants that need it
    /// and shown nowhere else (`***` in the API, `status` and error messages).
    public let sensitive: Bool
    /// `default`: the value a missing member takes, filled in when a run starts.
    public let defaultValue: JSONValue?
    /// `pattern`, compiled once.
    let expression: NSRegularExpression?

    init(
        types: [String]?, properties: [String: InputSchema]?, required: [String], items: InputSchema?,
        enumValues: [JSONValue]?, additionalProperties: Bool, minimum: Double?, maximum: Double?,
        minLength: Int?, maxLength: Int?, pattern: String?, sensitive: Bool = false, defaultValue: JSONValue? = nil
    ) {
        self.defaultValue = defaultValue
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
        self.sensitive = sensitive
        self.expression = pattern.flatMap { try? NSRegularExpression(pattern: $0) }
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
        var budget = Self.matchingBudget
        return violations(of: value, at: path, budget: &budget)
    }

    /// - Parameter budget: the pattern-matching work left for the whole input, shared by every value in it.
    func violations(of value: JSONValue, at path: String, budget: inout Int) -> [String] {
        var problems: [String] = []
        if let types, !types.contains(where: { Self.matches(value, type: $0) }) {
            let expected = types.count == 1 ? types[0] : types.joined(separator: " or ")
            return ["\(path) must be \(Self.article(expected)), but it is \(value.typeName)"]
        }
        if let enumValues, !enumValues.contains(value) {
            problems.append(
                "\(path) must be one of \(enumValues.map(\.jsonText).joined(separator: ", "))\(sensitive ? "" : ", but it is \(value.jsonText)")")
        }
        switch value {
        case .object(let members):
            for key in required where members[key] == nil {
                problems.append("\(path) lacks the required field \"\(key)\"")
            }
            for key in members.keys.sorted() {
                if let schema = properties?[key] {
                    problems += schema.violations(of: members[key]!, at: "\(path).\(key)", budget: &budget)
                } else if !additionalProperties, properties != nil {
                    problems.append("\(path) has the field \"\(key)\", which inputSchema does not allow")
                }
            }
        case .array(let elements):
            if let items {
                for (i, element) in elements.enumerated() { problems += items.violations(of: element, at: "\(path)[\(i)]", budget: &budget) }
            }
        case .string(let s):
            if let minLength, s.count < minLength { problems.append("\(path) must have at least \(minLength) characters") }
            if let maxLength, s.count > maxLength { problems.append("\(path) must have at most \(maxLength) characters") }
            if let pattern {
                switch Self.match(expression, in: s, budget: &budget) {
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

    /// `value` with every member this schema declares with a `default` filled in where it is missing, in nested
    /// objects too.
    public func withDefaults(_ value: JSONValue) -> JSONValue {
        guard case .object(var members) = value, let properties else { return value }
        for (key, schema) in properties {
            if let member = members[key] {
                members[key] = schema.withDefaults(member)
            } else if let fallback = schema.defaultValue {
                members[key] = schema.withDefaults(fallback)
            }
        }
        return .object(members)
    }

    /// The first object member along `path` that this schema declares but does not require (`input.note`), or nil
    /// when every member along it is required (or the schema says nothing about it).
    func firstOptionalField(along path: [JSONPath.Component]) -> String? {
        var schema: InputSchema? = self
        var walked = "input"
        for component in path {
            guard let current = schema else { return nil }
            switch component {
            case .key(let key):
                walked += "." + key
                guard let member = current.properties?[key] else { return nil }
                if !current.required.contains(key) && member.defaultValue == nil { return walked }
                schema = member
            case .index(let index):
                walked += "[\(index)]"
                schema = current.items
            }
        }
        return nil
    }

    /// `value` with every field this schema marks `writeOnly` replaced by what `transform` makes of it.
    public func transformingWriteOnly(_ value: JSONValue, _ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONValue {
        if sensitive { return try transform(value) }
        switch value {
        case .object(var members):
            guard let properties else { return value }
            for (key, schema) in properties {
                if let member = members[key] { members[key] = try schema.transformingWriteOnly(member, transform) }
            }
            return .object(members)
        case .array(let elements):
            guard let items else { return value }
            return .array(try elements.map { try items.transformingWriteOnly($0, transform) })
        default:
            return value
        }
    }

    /// `value` as it may be shown: every field this schema marks `writeOnly` is `***`.
    public func masking(_ value: JSONValue) -> JSONValue {
        if sensitive { return "***" }
        switch value {
        case .object(var members):
            guard let properties else { return value }
            for (key, schema) in properties { if let member = members[key] { members[key] = schema.masking(member) } }
            return .object(members)
        case .array(let elements):
            guard let items else { return value }
            return .array(elements.map(items.masking))
        default:
            return value
        }
    }

    /// The longest `pattern` a definition may declare.
    public static let maximumPatternLength = 1_000
    /// How much backtracking the patterns may cost while one input is checked, across all its values, counted
    /// in ICU's progress reports. ICU reports progress once per position it tries a match from (those are not
    /// counted against the budget: scanning costs what the input's size allows) and once per fixed amount of
    /// backtracking (those are). So this bounds work, not time: about 0.1 s here, far beyond what a reasonable
    /// pattern and value need, and far short of what a pattern that backtracks without end (`^(a+)+$` on a
    /// long run of `a`) would cost on every value of a large input.
    static let matchingBudget = 1_000

    enum PatternMatch { case matches, doesNotMatch, tooCostly }

    /// Searches `text` for the pattern (anywhere, as JSON Schema's `pattern` does), spending from `budget`
    /// what the search costs beyond one report per position; gives up once the budget is spent.
    static func match(_ expression: NSRegularExpression?, in text: String, budget: inout Int) -> PatternMatch {
        guard let expression else { return .doesNotMatch }
        guard budget > 0 else { return .tooCostly }
        let positions = text.utf16.count + 1
        let allowance = budget + positions
        var found = false
        var reports = 0
        expression.enumerateMatches(in: text, options: [.reportProgress], range: NSRange(text.startIndex..., in: text)) { result, _, stop in
            if result != nil {
                found = true
                stop.pointee = true
                return
            }
            reports += 1
            if reports >= allowance { stop.pointee = true }
        }
        budget -= max(0, reports - positions)
        if found { return .matches }
        return reports >= allowance ? .tooCostly : .doesNotMatch
    }

    static func article(_ type: String) -> String {
        type.first.map { "aeiou".contains($0) } == true ? "an \(type)" : "a \(type)"
    }
}

import Foundation

/// A test on values a run knows (its input, earlier responses, callback outputs), written in JSON so that it
/// validates and shows in `plan`, like Step Functions' Choice rules:
///
///     {"value": "{{steps.kyc.response.body.decision}}", "equals": "approved"}
///     {"all": [{"value": "{{input.amount}}", "greaterThan": 500}, {"not": {"value": "{{input.vip}}", "equals": true}}]}
///
/// A value that is not there (a field the body lacks, the response of a step that was skipped) equals nothing, is in
/// nothing, is neither less nor greater than anything and matches nothing; only `exists` tells it apart.
public indirect enum Condition: Sendable, Hashable {
    case all([Condition])
    case any([Condition])
    case not(Condition)
    case test(TemplateValue, Comparison)

    public enum Comparison: Sendable, Hashable {
        case equals(JSONValue)
        case isIn([JSONValue])
        case lessThan(JSONValue)
        case greaterThan(JSONValue)
        /// true: the value is there and not null; false: it is not.
        case exists(Bool)
        /// A regular expression the text must match somewhere (anchor it with ^ and $ to match all of it).
        case matches(String)
    }

    /// The names of the comparisons, as written.
    public static let comparisons = ["equals", "in", "lessThan", "greaterThan", "exists", "matches"]

    /// Whether the condition holds for what `context` knows.
    public func holds(in context: TemplateContext) -> Bool {
        switch self {
        case .all(let conditions): return conditions.allSatisfy { $0.holds(in: context) }
        case .any(let conditions): return conditions.contains { $0.holds(in: context) }
        case .not(let condition): return !condition.holds(in: context)
        case .test(let template, let comparison):
            let value = try? context.render(template)
            return Self.compare(value, comparison)
        }
    }

    static func compare(_ value: JSONValue?, _ comparison: Comparison) -> Bool {
        if case .exists(let wanted) = comparison { return (value != nil && value != .null) == wanted }
        guard let value else { return false }
        switch comparison {
        case .equals(let expected): return same(value, expected)
        case .isIn(let options): return options.contains { same(value, $0) }
        case .lessThan(let bound): return order(value, bound) == .orderedAscending
        case .greaterThan(let bound): return order(value, bound) == .orderedDescending
        case .matches(let pattern):
            guard let text = value.stringValue, let regex = try? Regex(pattern) else { return false }
            return (try? regex.firstMatch(in: text)) != nil
        case .exists: return true
        }
    }

    /// JSON equality, with numbers compared as numbers (1 equals 1.0).
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue, a.isNumber, b.isNumber { return x == y }
        return a == b
    }

    /// Numbers by value, text by its characters (RFC 3339 times written alike order as times); nil for anything else.
    static func order(_ a: JSONValue, _ b: JSONValue) -> ComparisonResult? {
        if a.isNumber, b.isNumber, let x = a.doubleValue, let y = b.doubleValue {
            return x < y ? .orderedAscending : x > y ? .orderedDescending : .orderedSame
        }
        if let x = a.stringValue, let y = b.stringValue {
            return x < y ? .orderedAscending : x > y ? .orderedDescending : .orderedSame
        }
        return nil
    }

    /// Every template reference the condition reads.
    public var references: [TemplateReference] {
        switch self {
        case .all(let conditions), .any(let conditions): conditions.flatMap(\.references)
        case .not(let condition): condition.references
        case .test(let value, _): value.references
        }
    }

    /// The condition as a person reads it, for `plan` and the history: `steps.kyc.response.body.decision equals "approved"`.
    public var summary: String {
        switch self {
        case .all(let conditions): return conditions.count == 1 ? conditions[0].summary : "(" + conditions.map(\.summary).joined(separator: " and ") + ")"
        case .any(let conditions): return conditions.count == 1 ? conditions[0].summary : "(" + conditions.map(\.summary).joined(separator: " or ") + ")"
        case .not(let condition): return "not " + condition.summary
        case .test(let value, let comparison):
            let subject: String
            switch value {
            case .string(let template): subject = template.wholeReference.map { "\($0)" } ?? "\"\(template.source)\""
            case .literal(let json): subject = json.jsonText
            default: subject = "a value"
            }
            switch comparison {
            case .equals(let expected): return "\(subject) equals \(expected.jsonText)"
            case .isIn(let options): return "\(subject) in \(JSONValue.array(options).jsonText)"
            case .lessThan(let bound): return "\(subject) < \(bound.jsonText)"
            case .greaterThan(let bound): return "\(subject) > \(bound.jsonText)"
            case .exists(let wanted): return wanted ? "\(subject) exists" : "\(subject) does not exist"
            case .matches(let pattern): return "\(subject) matches /\(pattern)/"
            }
        }
    }
}

extension JSONValue {
    var isNumber: Bool {
        switch self {
        case .int, .double, .bigInteger: true
        default: false
        }
    }
}

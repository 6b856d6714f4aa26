import Foundation

/// One `{{…}}` reference inside a template.
public enum TemplateReference: Sendable, Hashable, CustomStringConvertible {
    /// `{{input.a.b[0]}}`
    case input([JSONPath.Component])
    /// `{{steps.NAME.response.status}}`
    case stepStatus(step: String)
    /// `{{steps.NAME.response.body.a.b}}`
    case stepBody(step: String, path: [JSONPath.Component])
    /// `{{steps.NAME.idempotencyKey}}`: the `Idempotency-Key` of the step's forward call, known before it is sent.
    /// A compensation names the action it undoes with it, whether or not an answer ever came.
    case stepIdempotencyKey(step: String)
    /// `{{steps.NAME.callback.output.a.b}}`: what a callback step's participant posted when it completed the step.
    case stepCallbackOutput(step: String, path: [JSONPath.Component])
    /// `{{callback.url}}`: in a callback step's request, the URL that completes this attempt of the step.
    case callbackURL
    /// `{{callback.token}}`: the token in that URL, for a participant that builds the URL itself.
    case callbackToken
    /// `{{steps.NAME.responses[3].body.a}}`: the answers of a `forEach` step, one per item, in the items' order (each
    /// `{"status": …, "body": …}`).
    case stepResponses(step: String, path: [JSONPath.Component])
    /// `{{steps.NAME.output.a}}`: what a step's child saga gave back (its `output`), once the child completed.
    case stepOutput(step: String, path: [JSONPath.Component])
    /// `{{item.a.b}}`: in a `forEach` step's calls and outcome rules, the item this call is for.
    case item([JSONPath.Component])
    /// `{{index}}`: in a `forEach` step's calls and outcome rules, the item's position, from 0.
    case index
    /// `{{run.id}}`
    case runID
    /// `{{env.NAME}}`
    case env(String)

    public var description: String {
        switch self {
        case .input(let path): "input" + TemplateReference.pathText(path)
        case .stepStatus(let step): "steps.\(step).response.status"
        case .stepBody(let step, let path): "steps.\(step).response.body" + TemplateReference.pathText(path)
        case .stepIdempotencyKey(let step): "steps.\(step).idempotencyKey"
        case .stepCallbackOutput(let step, let path): "steps.\(step).callback.output" + TemplateReference.pathText(path)
        case .callbackURL: "callback.url"
        case .callbackToken: "callback.token"
        case .stepResponses(let step, let path): "steps.\(step).responses" + TemplateReference.pathText(path)
        case .stepOutput(let step, let path): "steps.\(step).output" + TemplateReference.pathText(path)
        case .item(let path): "item" + TemplateReference.pathText(path)
        case .index: "index"
        case .runID: "run.id"
        case .env(let name): "env.\(name)"
        }
    }

    public var stepName: String? {
        switch self {
        case .stepStatus(let step), .stepBody(let step, _), .stepIdempotencyKey(let step), .stepCallbackOutput(let step, _),
            .stepResponses(let step, _), .stepOutput(let step, _):
            step
        default: nil
        }
    }

    /// Reads what a step answered: its response (which exists only once the step succeeded) or its callback's output
    /// (only once the callback came).
    public var readsResponse: Bool {
        switch self {
        case .stepStatus, .stepBody, .stepCallbackOutput, .stepResponses, .stepOutput: true
        default: false
        }
    }

    /// Reads the item of a `forEach` step's call (`{{item…}}` or `{{index}}`).
    public var readsItem: Bool {
        switch self {
        case .item, .index: true
        default: false
        }
    }

    static func pathText(_ path: [JSONPath.Component]) -> String {
        path.map { component in
            switch component {
            case .key(let k): ".\(k)"
            case .index(let i): "[\(i)]"
            }
        }.joined()
    }

    /// Parses the text between `{{` and `}}`.
    static func parse(_ raw: String) throws(TemplateSyntaxError) -> TemplateReference {
        let text = raw.trimmingCharacters(in: .whitespaces)
        let components = try splitPath(text)
        guard case .key(let root)? = components.first else {
            throw TemplateSyntaxError("\"{{\(raw)}}\" is empty; write a reference such as {{input.orderId}} or {{steps.NAME.response.body.id}}")
        }
        let rest = Array(components.dropFirst())
        switch root {
        case "input":
            return .input(rest)
        case "item":
            return .item(rest)
        case "index":
            guard rest.isEmpty else { throw TemplateSyntaxError("\"{{\(text)}}\": {{index}} is the item's position, a number with no fields") }
            return .index
        case "callback":
            if rest == [.key("url")] { return .callbackURL }
            if rest == [.key("token")] { return .callbackToken }
            throw TemplateSyntaxError("\"{{\(text)}}\": a callback step's request may use {{callback.url}} or {{callback.token}}")
        case "run":
            guard rest == [.key("id")] else {
                throw TemplateSyntaxError("\"{{\(text)}}\": the only run field is {{run.id}}")
            }
            return .runID
        case "env":
            guard rest.count == 1, case .key(let name) = rest[0], isEnvironmentName(name) else {
                throw TemplateSyntaxError("\"{{\(text)}}\": write {{env.NAME}} with a variable name of letters, digits and underscores")
            }
            return .env(name)
        case "steps":
            if rest.count == 2, case .key(let step) = rest[0], rest[1] == .key("idempotencyKey") {
                return .stepIdempotencyKey(step: step)
            }
            if rest.count >= 2, case .key(let step) = rest[0], rest[1] == .key("output") {
                return .stepOutput(step: step, path: Array(rest.dropFirst(2)))
            }
            if rest.count >= 2, case .key(let step) = rest[0], rest[1] == .key("responses") {
                return .stepResponses(step: step, path: Array(rest.dropFirst(2)))
            }
            if rest.count >= 3, case .key(let step) = rest[0], rest[1] == .key("callback"), rest[2] == .key("output") {
                return .stepCallbackOutput(step: step, path: Array(rest.dropFirst(3)))
            }
            guard rest.count >= 3, case .key(let step) = rest[0], rest[1] == .key("response") else {
                throw TemplateSyntaxError(
                    "\"{{\(text)}}\": write {{steps.NAME.response.status}}, {{steps.NAME.response.body.PATH}}, {{steps.NAME.responses[0].body.PATH}} (a forEach step), {{steps.NAME.callback.output.PATH}} or {{steps.NAME.idempotencyKey}}")
            }
            if rest[2] == .key("status"), rest.count == 3 { return .stepStatus(step: step) }
            if rest[2] == .key("body") { return .stepBody(step: step, path: Array(rest.dropFirst(3))) }
            throw TemplateSyntaxError(
                "\"{{\(text)}}\": a step response has \"status\" and \"body\"; write {{steps.\(step).response.status}} or {{steps.\(step).response.body.PATH}}")
        default:
            throw TemplateSyntaxError(
                "\"{{\(text)}}\" starts with \"\(root)\"\(Suggestion.didYouMean(root, in: ["input", "steps", "run", "env", "callback", "item", "index"])); a reference starts with input, steps, run, env, callback, or (in a forEach step) item or index")
        }
    }

    private static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
    }

    /// `a.b[0].c` or `a.b.0.c` → components. Numeric segments are array indexes.
    private static func splitPath(_ text: String) throws(TemplateSyntaxError) -> [JSONPath.Component] {
        var components: [JSONPath.Component] = []
        for segment in text.split(separator: ".", omittingEmptySubsequences: false) {
            var segment = Substring(segment)
            guard !segment.isEmpty else {
                throw TemplateSyntaxError("\"{{\(text)}}\" has an empty path segment; remove the extra dot")
            }
            var key = segment.prefix { $0 != "[" }
            segment = segment.dropFirst(key.count)
            if !key.isEmpty {
                guard key.allSatisfy({ !$0.isWhitespace && $0 != "]" && $0 != "{" && $0 != "}" }) else {
                    throw TemplateSyntaxError("\"{{\(text)}}\": \"\(key)\" is not a valid path segment")
                }
                if let index = Int(key), index >= 0, key.first != "+" {
                    components.append(components.isEmpty ? .key(String(key)) : .index(index))
                } else {
                    components.append(.key(String(key)))
                }
                key = ""
            }
            while !segment.isEmpty {
                guard segment.first == "[", let close = segment.firstIndex(of: "]"),
                    let index = Int(segment[segment.index(after: segment.startIndex)..<close]), index >= 0
                else {
                    throw TemplateSyntaxError("\"{{\(text)}}\": write array indexes as [0] or .0")
                }
                components.append(.index(index))
                segment = segment[segment.index(after: close)...]
            }
        }
        return components
    }
}

public struct TemplateSyntaxError: Error, Sendable, Equatable {
    public var message: String
    init(_ message: String) { self.message = message }
}

/// A string that may hold `{{…}}` references, parsed once.
public struct TemplateString: Sendable, Hashable {
    public enum Part: Sendable, Hashable {
        case literal(String)
        case reference(TemplateReference)
    }

    public let source: String
    public let parts: [Part]
    /// `{{input.note ?? ""}}`: the value a reference at this position of `parts` takes when what it names is not
    /// there (a field left out of the input, a step with no response).
    public let defaults: [Int: JSONValue]

    public init(parsing source: String) throws(TemplateSyntaxError) {
        self.source = source
        var parts: [Part] = []
        var defaults: [Int: JSONValue] = [:]
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<open.lowerBound]))) }
            let afterOpen = rest[open.upperBound...]
            guard let close = afterOpen.range(of: "}}") else {
                throw TemplateSyntaxError("\"\(source)\" opens \"{{\" without a closing \"}}\"")
            }
            let inside = afterOpen[..<close.lowerBound]
            if let marker = inside.range(of: "??") {
                let text = inside[marker.upperBound...].trimmingCharacters(in: .whitespaces)
                guard !text.isEmpty, let value = try? JSONParser.parse(Array(text.utf8)).value else {
                    throw TemplateSyntaxError(
                        "\"{{\(inside)}}\": after ?? write the value to use when the reference has none, as JSON: \"\" or \"none\" (quoted), 0, false or null")
                }
                defaults[parts.count] = value
                parts.append(.reference(try TemplateReference.parse(String(inside[..<marker.lowerBound]))))
            } else {
                parts.append(.reference(try TemplateReference.parse(String(inside))))
            }
            rest = afterOpen[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
        self.defaults = defaults
    }

    public var references: [TemplateReference] {
        parts.compactMap { if case .reference(let r) = $0 { r } else { nil } }
    }

    /// The references without a default: what must be there when the template is rendered.
    public var requiredReferences: [TemplateReference] {
        parts.indices.compactMap { index in
            if case .reference(let r) = parts[index], defaults[index] == nil { r } else { nil }
        }
    }

    /// The default of the whole reference, when the string is one reference with a default.
    public var wholeDefault: JSONValue? { wholeReference == nil ? nil : defaults[0] }

    /// The reference when the whole string is a single `{{…}}`: it then keeps the value's JSON type.
    public var wholeReference: TemplateReference? {
        if parts.count == 1, case .reference(let r) = parts[0] { return r }
        return nil
    }

    /// The leading literal text, if any (used to check the scheme of URLs).
    public var literalPrefix: String {
        if case .literal(let text)? = parts.first { return text }
        return ""
    }
}

/// A JSON body whose strings may hold templates.
public indirect enum TemplateValue: Sendable, Hashable {
    case literal(JSONValue)
    case string(TemplateString)
    case array([TemplateValue])
    case object([String: TemplateValue])

    public var references: [TemplateReference] {
        switch self {
        case .literal: []
        case .string(let s): s.references
        case .array(let items): items.flatMap(\.references)
        case .object(let members): members.keys.sorted().flatMap { members[$0]!.references }
        }
    }

    /// The references without a default.
    public var requiredReferences: [TemplateReference] {
        switch self {
        case .literal: []
        case .string(let s): s.requiredReferences
        case .array(let items): items.flatMap(\.requiredReferences)
        case .object(let members): members.keys.sorted().flatMap { members[$0]!.requiredReferences }
        }
    }
}

import Foundation

/// What templates can refer to while a run is executing.
public struct TemplateContext: Sendable {
    public var input: JSONValue
    public var runID: String
    public var env: [String: String]
    public var responses: [String: StepResponse]
    /// What each callback step's participant posted when it completed the step, by step name.
    public var callbackOutputs: [String: JSONValue]
    /// For a callback step's request: the URL and token that complete this attempt.
    public var callback: (url: String, token: String)?
    /// The answers of each `forEach` step, by step name: an array with one `{"status", "body"}` (or null) per item.
    public var itemResponses: [String: JSONValue] = [:]
    /// In a `forEach` step's call: the step, and the item the call is for (its position and value). The step's own
    /// `{{steps.NAME.response…}}` and `{{steps.NAME.idempotencyKey}}` are then this item's.
    public var element: (step: String, index: Int, item: JSONValue)?

    public init(
        input: JSONValue, runID: String, env: [String: String], responses: [String: StepResponse] = [:],
        callbackOutputs: [String: JSONValue] = [:], callback: (url: String, token: String)? = nil
    ) {
        self.input = input
        self.runID = runID
        self.env = env
        self.responses = responses
        self.callbackOutputs = callbackOutputs
        self.callback = callback
    }
}

extension TemplateContext {
    /// The same context with every environment value replaced by its reference, for showing a request
    /// (in an error, a log line, the history) without the values the server's environment holds.
    public var masked: TemplateContext {
        var copy = self
        copy.env = Dictionary(uniqueKeysWithValues: env.keys.map { ($0, "{{env.\($0)}}") })
        return copy
    }

    /// Values shorter than this are not searched for in free text: they would match ordinary words.
    public static let shortestMaskedValue = 4

    /// `text` with every value of the named environment variables replaced by its reference, so that an error
    /// that quotes a request (or a participant's answer that echoes one) does not carry the value on.
    public func maskingEnvironment(in text: String, names: some Sequence<String>) -> String {
        var out = text
        // Longest first, so a value that contains another is replaced whole.
        let values = names.compactMap { name in env[name].map { (name, $0) } }.filter { $0.1.count >= Self.shortestMaskedValue }
        for (name, value) in values.sorted(by: { $0.1.count > $1.1.count }) where out.contains(value) {
            out = out.replacingOccurrences(of: value, with: "{{env.\(name)}}")
        }
        return out
    }
}

/// A reference that cannot be resolved against a run's data.
public struct TemplateRenderError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }
}

extension TemplateContext {
    /// The reference's value, or `fallback` (a template's `?? value`) when what it names is not there.
    public func resolve(_ reference: TemplateReference, default fallback: JSONValue?) throws(TemplateRenderError) -> JSONValue {
        guard let fallback else { return try resolve(reference) }
        do {
            return try resolve(reference)
        } catch {
            return fallback
        }
    }

    public func resolve(_ reference: TemplateReference) throws(TemplateRenderError) -> JSONValue {
        switch reference {
        case .input(let path):
            return try Self.walk(input, path: path, from: "input", reference: reference)
        case .runID:
            return .string(runID)
        case .stepIdempotencyKey(let step):
            if let element, element.step == step {
                return .string(IdempotencyKey.of(runID: runID, step: StepElement.name(of: step, index: element.index), phase: .forward))
            }
            return .string(IdempotencyKey.of(runID: runID, step: step, phase: .forward))
        case .item(let path):
            guard let element else { throw TemplateRenderError(message: "{{\(reference)}} is only known in the calls of a step that declares \"forEach\"") }
            return try Self.walk(element.item, path: path, from: "item [\(element.index)] of step \"\(element.step)\"", reference: reference)
        case .index:
            guard let element else { throw TemplateRenderError(message: "{{index}} is only known in the calls of a step that declares \"forEach\"") }
            return .int(Int64(element.index))
        case .stepOutput(let step, let path):
            guard let output = callbackOutputs[step] else {
                throw TemplateRenderError(message: "{{\(reference)}}: step \"\(step)\" has no output (its child run has not completed)")
            }
            return try Self.walk(output, path: path, from: "the output of step \"\(step)\"'s child run", reference: reference)
        case .stepResponses(let step, let path):
            guard let responses = itemResponses[step] else {
                throw TemplateRenderError(message: "{{\(reference)}}: step \"\(step)\" has no answers (it has not run over its items)")
            }
            return try Self.walk(responses, path: path, from: "the answers of step \"\(step)\"", reference: reference)
        case .env(let name):
            guard let value = env[name] else {
                throw TemplateRenderError(
                    message: "{{env.\(name)}}: the environment variable \(name) is not set where the engine runs, or the server does not allow definitions to read it (skald serve --allow-env)")
            }
            return .string(value)
        case .stepStatus(let step):
            guard let response = responses[step] else { throw Self.noResponse(reference, step: step) }
            return .int(Int64(response.status))
        case .stepBody(let step, let path):
            guard let response = responses[step] else { throw Self.noResponse(reference, step: step) }
            return try Self.walk(response.body, path: path, from: "the response body of step \"\(step)\"", reference: reference)
        case .stepCallbackOutput(let step, let path):
            guard let output = callbackOutputs[step] else {
                throw TemplateRenderError(
                    message: "{{\(reference)}}: step \"\(step)\" has no callback output (its callback has not come, or its outcome is unknown); a compensation can name the action by {{steps.\(step).idempotencyKey}} instead")
            }
            return try Self.walk(output, path: path, from: "the callback output of step \"\(step)\"", reference: reference)
        case .callbackURL, .callbackToken:
            guard let callback else {
                throw TemplateRenderError(message: "{{\(reference)}} is only known in the request of a step that declares \"callback\"")
            }
            return .string(reference == .callbackURL ? callback.url : callback.token)
        }
    }

    static func noResponse(_ reference: TemplateReference, step: String) -> TemplateRenderError {
        TemplateRenderError(
            message: "{{\(reference)}}: step \"\(step)\" has no response (it has not succeeded, or its outcome is unknown); a compensation can name the action by {{steps.\(step).idempotencyKey}} instead")
    }

    static func walk(_ root: JSONValue, path: [JSONPath.Component], from origin: String, reference: TemplateReference)
        throws(TemplateRenderError) -> JSONValue
    {
        var value = root
        var walked = ""
        for component in path {
            switch (component, value) {
            case (.key(let key), .object(let members)):
                guard let next = members[key] else {
                    let known = members.keys.sorted().prefix(8).joined(separator: ", ")
                    throw TemplateRenderError(
                        message: "{{\(reference)}}: \(origin)\(walked) has no field \"\(key)\"\(known.isEmpty ? "" : " (it has: \(known))")")
                }
                value = next
                walked += ".\(key)"
            case (.index(let index), .array(let items)):
                guard index < items.count else {
                    throw TemplateRenderError(message: "{{\(reference)}}: \(origin)\(walked) has \(items.count) items, so [\(index)] does not exist")
                }
                value = items[index]
                walked += "[\(index)]"
            case (.key(let key), _):
                throw TemplateRenderError(message: "{{\(reference)}}: \(origin)\(walked) is \(value.typeName), not an object, so it has no field \"\(key)\"")
            case (.index(let index), _):
                throw TemplateRenderError(message: "{{\(reference)}}: \(origin)\(walked) is \(value.typeName), not an array, so it has no item [\(index)]")
            }
        }
        return value
    }

    /// Renders a string template. Inside URLs, values from the input, step responses and the run id
    /// are percent-encoded; environment values (base URLs) are inserted as they are.
    public func render(_ template: TemplateString, encodingForURL: Bool = false) throws(TemplateRenderError) -> String {
        var out = ""
        for (index, part) in template.parts.enumerated() {
            switch part {
            case .literal(let text): out += text
            case .reference(let reference):
                let text = try resolve(reference, default: template.defaults[index]).interpolationText
                if encodingForURL, case .env = reference {
                    out += text
                } else if encodingForURL {
                    out += text.addingPercentEncoding(withAllowedCharacters: Self.urlValueAllowed) ?? text
                } else {
                    out += text
                }
            }
        }
        return out
    }

    /// Renders a JSON body. A string that is one whole reference keeps the referenced value's type.
    public func render(_ value: TemplateValue) throws(TemplateRenderError) -> JSONValue {
        switch value {
        case .literal(let json): return json
        case .string(let template):
            if let whole = template.wholeReference { return try resolve(whole, default: template.wholeDefault) }
            return .string(try render(template))
        case .array(let items):
            var out: [JSONValue] = []
            out.reserveCapacity(items.count)
            for item in items { out.append(try render(item)) }
            return .array(out)
        case .object(let members):
            var out: [String: JSONValue] = [:]
            for (key, member) in members { out[key] = try render(member) }
            return .object(out)
        }
    }

    static let urlValueAllowed: CharacterSet = {
        CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    }()
}

/// Which environment variables `{{env.NAME}}` may read.
///
/// A definition is code that runs with the server's environment, and anyone allowed to register one could
/// otherwise send the server's secrets to a host of their choosing. So the operator names what may be read
/// (`skald serve --allow-env 'INVENTORY_URL,PAYMENTS_*'`), and Skald's own variables (`SKALD_*`, the API
/// token among them) are never readable, whatever the list says.
public struct EnvironmentPolicy: Sendable, Equatable {
    /// Exact names, or patterns where `*` stands for any run of characters (`PAYMENTS_*`, `*_URL`, `APP_*_URL`).
    public private(set) var patterns: [String]

    /// Names no definition can read: every variable Skald itself reads starts with `SKALD_`.
    public static func isReserved(_ name: String) -> Bool { name.hasPrefix("SKALD_") }

    /// Reads every variable except Skald's own (for definitions an operator runs from their own files).
    public static let allButReserved = EnvironmentPolicy(patterns: ["*"])

    public init(patterns: [String]) {
        self.patterns = patterns
    }

    /// Parses `NAME,PREFIX_*` (commas or spaces between entries).
    /// - Throws: a sentence naming the entry that is not a variable name or a prefix pattern.
    public static func parse(_ text: String) throws(EnvironmentPolicyError) -> EnvironmentPolicy {
        let entries = text.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        for entry in entries {
            let valid = entry.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2A
            }
            guard valid, !entry.isEmpty else {
                throw EnvironmentPolicyError(
                    message: "\"\(entry)\" is not a variable name or a pattern with * (any characters); write for example INVENTORY_URL,PAYMENTS_*,*_URL")
            }
        }
        return EnvironmentPolicy(patterns: entries)
    }

    /// The same policy, also allowing `names`.
    public func allowing(_ names: some Sequence<String>) -> EnvironmentPolicy {
        var copy = self
        for name in names where !copy.allows(name) && !Self.isReserved(name) { copy.patterns.append(name) }
        return copy
    }

    public func allows(_ name: String) -> Bool {
        guard !Self.isReserved(name) else { return false }
        return patterns.contains { Self.matches(name, $0) }
    }

    /// Whether `name` matches `pattern`, where each `*` stands for any run of characters (none included).
    static func matches(_ name: String, _ pattern: String) -> Bool {
        guard pattern.contains("*") else { return name == pattern }
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false)
        var rest = Substring(name)
        guard rest.hasPrefix(parts[0]) else { return false }
        rest = rest.dropFirst(parts[0].count)
        for (index, part) in parts.enumerated().dropFirst() {
            if index == parts.count - 1 { return rest.hasSuffix(part) }
            guard !part.isEmpty else { continue }
            guard let found = rest.range(of: part) else { return false }
            rest = rest[found.upperBound...]
        }
        return true
    }

    /// The variables of `environment` this policy allows: all an engine ever resolves.
    public func filter(_ environment: [String: String]) -> [String: String] {
        environment.filter { allows($0.key) }
    }

    /// Each use in `definition` of a variable this policy does not allow, at the JSON path of the field that
    /// uses it, saying what to do.
    public func problems(in definition: SagaDefinition) -> [DefinitionProblem] {
        var problems: [DefinitionProblem] = []
        for (path, reference) in definition.locatedReferences {
            guard case .env(let name) = reference, !allows(name) else { continue }
            let message = Self.isReserved(name)
                ? "{{env.\(name)}} is one of Skald's own variables, which no definition can read; pass what the call needs in the run's input instead"
                : "{{env.\(name)}} is not among the environment variables this server allows definitions to read; ask the operator to allow it (skald serve --allow-env \(name), or SKALD_ALLOW_ENV), or pass the value in the run's input"
            problems.append(DefinitionProblem(path: path, message: message))
        }
        return problems
    }
}

/// An `--allow-env` value that is not a list of names and prefixes.
public struct EnvironmentPolicyError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension SagaDefinition {
    /// Every template reference of every call, with the JSON path of the field that holds it
    /// (`steps[0].request.url`, `steps[1].compensation.headers.Authorization`, `steps[2].request.body.amount`).
    public var locatedReferences: [(path: JSONPath, reference: TemplateReference)] {
        calls.flatMap { path, call in call.locatedReferences(at: path) }
    }
}

extension CallDefinition {
    /// The call's template references with the JSON path of the field that holds each.
    public func locatedReferences(at path: JSONPath) -> [(path: JSONPath, reference: TemplateReference)] {
        var located: [(JSONPath, TemplateReference)] = url.references.map { (path.appending("url"), $0) }
        for header in headers {
            located += header.value.references.map { (path.appending("headers").appending(header.name), $0) }
        }
        if let body { located += Self.bodyReferences(body, at: path.appending("body")) }
        return located
    }

    static func bodyReferences(_ value: TemplateValue, at path: JSONPath) -> [(JSONPath, TemplateReference)] {
        switch value {
        case .literal: []
        case .string(let template): template.references.map { (path, $0) }
        case .array(let items): items.enumerated().flatMap { bodyReferences($1, at: path.appending($0)) }
        case .object(let members): members.keys.sorted().flatMap { bodyReferences(members[$0]!, at: path.appending($0)) }
        }
    }
}

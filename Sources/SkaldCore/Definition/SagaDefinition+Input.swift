/// A run's input (or environment) does not satisfy what the saga needs.
public struct InputError: Error, Sendable, CustomStringConvertible {
    public var problems: [String]
    /// The environment variables the engine lacks (a problem of where the engine runs, not of the input).
    public var missingEnvironment: [String]

    public init(problems: [String], missingEnvironment: [String] = []) {
        self.problems = problems
        self.missingEnvironment = missingEnvironment
    }

    /// Whether every problem is the engine's environment: the input itself is fine.
    public var isOnlyEnvironment: Bool { !missingEnvironment.isEmpty && problems.count == missingEnvironment.count }

    public var description: String { problems.joined(separator: "\n") }
}

extension SagaDefinition {
    /// Why `value` cannot be what a `forEach` runs over (it is not an array, or it has too many items), or nil.
    public static func itemsProblem(_ value: JSONValue, of reference: TemplateReference) -> String? {
        guard case .array(let items) = value else {
            return "{{\(reference)}} is \(value.typeName), but forEach runs over an array; pass the items as a JSON array"
        }
        if items.count > maximumItems {
            return "{{\(reference)}} has \(items.count) items, over the limit of \(maximumItems) for one forEach; split the work over several runs"
        }
        return nil
    }

    /// Checks, before a run starts, that the input matches `inputSchema`, that every input field a template
    /// reads is present, and that every environment variable a template reads is set.
    public func checkStart(input: JSONValue, environment: [String: String]) throws(InputError) {
        try checkStart(input: input, environment: environment, inputReferences: inputReferences, environmentNames: environmentNames)
    }

    /// The same, with `inputReferences` and `environmentNames` worked out once beforehand (see `SagaMachine`).
    func checkStart(
        input: JSONValue, environment: [String: String], inputReferences: [(reference: TemplateReference, usedAt: JSONPath)],
        environmentNames: [String]
    ) throws(InputError) {
        // Checked as the run will have it: with the schema's defaults filled in.
        let input = inputSchema?.withDefaults(input) ?? input
        var problems: [String] = []
        if let inputSchema {
            problems += inputSchema.violations(of: input).map { "\($0) (inputSchema)" }
        }
        let context = TemplateContext(input: input, runID: "", env: environment)
        // When the schema already explains what is missing, the references would only repeat it.
        for (reference, usedAt) in problems.isEmpty ? inputReferences : [] {
            do {
                _ = try context.resolve(reference)
            } catch {
                problems.append("\(error.message); \(usedAt) needs it, so add it to the input")
            }
        }
        // A forEach over the input is checked now, so a run that could never fan out is not started.
        if problems.isEmpty {
            for (index, step) in steps.enumerated() {
                guard let forEach = step.forEach, let reference = forEach.wholeReference, case .input = reference,
                    let value = try? context.resolve(reference)
                else { continue }
                if let problem = Self.itemsProblem(value, of: reference) {
                    problems.append("steps[\(index)].forEach: \(problem)")
                }
            }
        }
        let missing = environmentNames.filter { environment[$0] == nil }
        for name in missing {
            let users = calls.filter { $0.call.references.contains(.env(name)) }.map(\.path.description)
            problems.append(
                "the environment variable \(name) is not set where the engine runs, or the server does not allow definitions to read it; \(users.joined(separator: ", ")) use\(users.count == 1 ? "s" : "") it: set it in the environment of skald serve (or skald run), allow it with --allow-env when serving, and start again")
        }
        if !problems.isEmpty { throw InputError(problems: problems, missingEnvironment: missing) }
    }
}

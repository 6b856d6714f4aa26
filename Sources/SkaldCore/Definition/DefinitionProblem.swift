/// One thing wrong with a saga definition: where (JSON path, and line:column when known) and how to fix it.
public struct DefinitionProblem: Sendable, Hashable, CustomStringConvertible {
    public var path: JSONPath?
    public var location: SourceLocation?
    public var message: String

    public init(path: JSONPath?, location: SourceLocation? = nil, message: String) {
        self.path = path
        self.location = location
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let location { parts.append(location.description) }
        if let path { parts.append(path.description) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}

/// Every problem found in one definition file.
public struct DefinitionError: Error, Sendable, CustomStringConvertible {
    public var file: String?
    public var problems: [DefinitionProblem]
    /// What would be warned about once the problems are fixed, so that all of it is seen at once.
    public var warnings: [DefinitionProblem]

    public init(file: String?, problems: [DefinitionProblem], warnings: [DefinitionProblem] = []) {
        self.file = file
        self.problems = problems
        self.warnings = warnings
    }

    /// One line per warning, `FILE:LINE:COL: warning: PATH: message`.
    public var warningLines: [String] {
        warnings.map { warning in
            let shown = DefinitionProblem(
                path: nil, location: warning.location,
                message: "warning: " + (warning.path.map { "\($0): " } ?? "") + warning.message)
            return [file, shown.description].compactMap { $0 }.joined(separator: ":")
        }
    }

    /// One line per problem, `FILE:LINE:COL: PATH: message`, as compilers print them.
    public var lines: [String] {
        problems.map { problem in
            [file, problem.description].compactMap { $0 }.joined(separator: ":")
        }
    }

    public var description: String { lines.joined(separator: "\n") }
}

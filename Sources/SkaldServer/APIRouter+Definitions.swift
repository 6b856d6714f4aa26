import Foundation
import Hummingbird
import SkaldAPI
import SkaldCore
import SkaldEngine

/// The routes of definitions, counts and participants.
extension API {
    // MARK: - Definitions

    /// How many runs are in each status (every status named, zero included).
    func counts() async throws -> Response {
        let counts = try await store.runCounts()
        var shown: [String: Int] = [:]
        for status in RunStatus.allCases { shown[status.rawValue] = counts[status] ?? 0 }
        return .json(CountsView(counts: shown, total: counts.values.reduce(0, +)))
    }

    /// Every participant this node protects, with its circuit, load and settings (kept in memory, per node).
    func participants() -> Response {
        .json(ParticipantsPage(participants: engine.participants.statuses().map(Representation.participant)))
    }

    func listDefinitions() async throws -> Response {
        let definitions = try await store.definitions()
        return .json(DefinitionsPage(definitions: definitions.map { Representation.definition($0, full: false) }))
    }

    func getDefinition(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        var version: Int?
        if let text = request.uri.queryParameters.get("version") {
            guard let v = wholeNumber(text), v >= 1, v <= Int(Int32.max) else {
                throw APIError.invalid("version must be a whole number from 1 to \(Int32.max), not \"\(text)\"")
            }
            version = v
        }
        guard let definition = try await store.definition(name: name, version: version) else {
            throw APIError.notFound("no saga \"\(name)\"\(version.map { " version \($0)" } ?? "") is registered; register it with POST /v1/definitions or skald define FILE")
        }
        let graph = (try? engine.definition(definition)).map(graphs.graph)
        return .json(Representation.definition(definition, full: true, graph: graph))
    }

    func registerDefinition(_ request: Request) async throws -> Response {
        let bytes = try await body(of: request)
        let definition: SagaDefinition
        do {
            definition = try DefinitionParser.parse(bytes, file: nil)
        } catch {
            if error.problems.count == 1, error.problems[0].path == nil {
                throw APIError.malformed("the body is not valid JSON: \(error.problems[0])")
            }
            throw APIError.invalid(
                "the definition has \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s"): \(error.problems.map(\.description).joined(separator: "; "))",
                details: [
                    "problems": Representation.details(error.problems),
                    "warnings": Representation.details(error.warnings),
                ])
        }
        // The same content registered again (the operator's own file, say) grants nothing new; other content under a
        // registered name and version is refused first, whatever else is wrong with it, since that is what to fix first.
        let existing = try await store.definition(name: definition.name, version: definition.version)
        if let existing, existing.hash != definition.contentHash {
            throw APIError.conflict(
                "\(definition.name) version \(definition.version) is already registered with other content (hash \(existing.hash.prefix(12))…); bump \"version\" to register a change")
        }
        // Each refused use at its line and column, as every other problem is.
        let locations = existing == nil ? ((try? JSONParser.parse(bytes, options: .init(recordsLocations: true)))?.locations ?? [:]) : [:]
        let refused: [DefinitionProblem] = existing != nil ? [] : configuration.environmentPolicy.problems(in: definition).map { problem in
            var located = problem
            if located.location == nil, let path = problem.path { located.location = locations[path] }
            return located
        }
        if !refused.isEmpty {
            let error = DefinitionError(file: nil, problems: refused)
            throw APIError.invalid(
                "the definition reads environment variables this server does not allow: \(refused.map(\.description).joined(separator: "; "))",
                details: ["problems": Representation.details(error.problems)])
        }
        if existing == nil, let loop = try await ChildSagaCycles.problem(in: definition, store: store) {
            throw APIError.invalid("\(loop.path.map { "\($0): " } ?? "")\(loop.message)", details: ["problems": Representation.details([loop])])
        }
        func shown(_ stored: StoredDefinition) -> DefinitionView {
            Representation.definition(stored, full: false, warnings: definition.warnings)
        }
        switch try await store.registerDefinition(definition, at: Date()) {
        case .registered:
            return .json(shown(try await registered(definition)), status: .created)
        case .alreadyRegistered:
            return .json(shown(try await registered(definition)))
        case .conflict(let hash):
            throw APIError.conflict(
                "\(definition.name) version \(definition.version) is already registered with other content (hash \(hash.prefix(12))…); bump \"version\" to register a change")
        }
    }

    func registered(_ definition: SagaDefinition) async throws -> StoredDefinition {
        try await store.definition(name: definition.name, version: definition.version)
            ?? StoredDefinition(hash: definition.contentHash, name: definition.name, version: definition.version, document: definition.document, createdAt: Date())
    }
}

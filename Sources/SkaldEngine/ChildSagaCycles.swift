import Foundation
import SkaldCore

/// Sagas that start each other as children must not loop: a cycle would start children without end (the depth limit
/// would stop it, but only by failing a run). Checked when a saga is registered, against the sagas registered already
/// and those registered with it.
public enum ChildSagaCycles {
    /// The cycle `definition` would close, as the path of the child step that closes it and the names round it, or nil.
    ///
    /// - Parameter alongside: sagas registered together with it (a server's `--sagas` folder), found before the store's.
    public static func problem(in definition: SagaDefinition, store: any SagaStore, alongside: [SagaDefinition] = []) async throws
        -> DefinitionProblem?
    {
        for (index, step) in definition.steps.enumerated() {
            guard let child = step.action.child else { continue }
            var seen: Set<String> = []
            if let loop = try await path(from: child, to: definition.name, store: store, alongside: alongside, seen: &seen) {
                let names = [definition.name] + loop
                return DefinitionProblem(
                    path: JSONPath.root.appending("steps").appending(index).appending("saga").appending("name"),
                    message: "the sagas start each other in a loop: \(names.joined(separator: " starts ")); a saga may not run, directly or through others, as its own child")
            }
        }
        return nil
    }

    /// The names from `child` round to `target`, when following child steps gets there.
    private static func path(
        from child: ChildSagaDefinition, to target: String, store: any SagaStore, alongside: [SagaDefinition], seen: inout Set<String>
    ) async throws -> [String]? {
        if child.name == target { return [child.name] }
        guard seen.insert(child.name).inserted, seen.count <= DefinitionParser.maximumSteps else { return nil }
        let found: SagaDefinition?
        if let local = alongside.filter({ $0.name == child.name && (child.version == nil || $0.version == child.version) }).max(by: { $0.version < $1.version }) {
            found = local
        } else if let stored = try await store.definition(name: child.name, version: child.version) {
            found = try? DefinitionParser.parse(stored.document)
        } else {
            found = nil
        }
        guard let saga = found else { return nil }
        for step in saga.steps {
            guard let next = step.action.child else { continue }
            if let rest = try await path(from: next, to: target, store: store, alongside: alongside, seen: &seen) { return [child.name] + rest }
        }
        return nil
    }
}

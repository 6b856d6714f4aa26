import Foundation

/// The order of a saga's steps: `dependsOn`, cycles, and the pivot's place in it.
extension DefinitionParser {
    // MARK: - Dependencies

    /// Each step's direct dependencies (`dependsOn`, or the step before it in file order when absent) and,
    /// when there is no cycle, the steps each one depends on directly or through others.
    mutating func dependencyGraph(_ items: [JSONValue], names: [String]) -> (direct: [[Int]], transitive: [Set<Int>]?) {
        var direct: [[Int]] = []
        for (index, item) in items.enumerated() {
            let path = JSONPath.root.appending("steps").appending(index).appending("dependsOn")
            guard let value = item["dependsOn"] else {
                direct.append(index == 0 ? [] : [index - 1])
                continue
            }
            guard case .array(let entries) = value else {
                report(path, "\"dependsOn\" must be an array of step names, for example [\"reserve-hotel\", \"reserve-flight\"]; [] starts the step at once")
                direct.append([])
                continue
            }
            var indexes: [Int] = []
            for (position, entry) in entries.enumerated() {
                let entryPath = path.appending(position)
                guard let dependency = entry.stringValue else {
                    report(entryPath, "each entry of \"dependsOn\" must be a step name, but this one is \(entry.typeName)")
                    continue
                }
                guard let target = names.firstIndex(of: dependency) else {
                    let known = names.filter { !$0.isEmpty }
                    report(entryPath, "\"\(dependency)\" is not a step of this saga\(Suggestion.didYouMean(dependency, in: known)); the steps are \(known.joined(separator: ", "))")
                    continue
                }
                if target == index {
                    report(entryPath, "a step cannot depend on itself; remove \"\(dependency)\"")
                } else if indexes.contains(target) {
                    report(entryPath, "\"\(dependency)\" is listed twice; list each dependency once")
                } else {
                    indexes.append(target)
                }
            }
            direct.append(indexes)
        }
        // Cycles: depth-first search, reporting each cycle once at the step that closes it.
        var state = [Int](repeating: 0, count: items.count)  // 0 new, 1 on the stack, 2 done
        var stack: [Int] = []
        var hasCycle = false
        func visit(_ node: Int) {
            state[node] = 1
            stack.append(node)
            for next in direct[node] {
                if state[next] == 1 {
                    let cycle = stack[stack.firstIndex(of: next)!...].map { names[$0] } + [names[next]]
                    report(
                        JSONPath.root.appending("steps").appending(node).appending("dependsOn"),
                        "the dependencies form a cycle: \(cycle.joined(separator: " waits for ")); a step can only wait for steps that do not wait for it")
                    hasCycle = true
                } else if state[next] == 0 {
                    visit(next)
                }
            }
            stack.removeLast()
            state[node] = 2
        }
        for node in direct.indices where state[node] == 0 { visit(node) }
        guard !hasCycle else { return (direct, nil) }
        return (direct, Self.transitiveClosure(direct))
    }

    /// For each node of an acyclic graph given by its edges, every node it reaches directly or not.
    /// Each node's set is built once from its successors' sets (memoised depth-first).
    static func transitiveClosure(_ edges: [[Int]]) -> [Set<Int>] {
        var known = [Set<Int>?](repeating: nil, count: edges.count)
        func closure(_ node: Int) -> Set<Int> {
            if let done = known[node] { return done }
            var result = Set(edges[node])
            for next in edges[node] { result.formUnion(closure(next)) }
            known[node] = result
            return result
        }
        return edges.indices.map(closure)
    }

    /// At most one pivot; every other step runs before it or after it; steps after it have no compensation.
    mutating func checkPivot(_ steps: [StepDefinition], closure: [Set<Int>]) -> Int? {
        let pivots = steps.indices.filter { steps[$0].isPivot }
        guard let pivot = pivots.first else { return nil }
        for extra in pivots.dropFirst() {
            report(
                JSONPath.root.appending("steps").appending(extra).appending("pivot"),
                "only one step can be the pivot, and \"\(steps[pivot].name)\" already is; remove \"pivot\" here")
        }
        if steps[pivot].compensation != nil {
            report(
                JSONPath.root.appending("steps").appending(pivot).appending("compensation"),
                "\"\(steps[pivot].name)\" is the pivot, the point of no return: once it succeeds nothing is undone, so its compensation would never run; remove it")
        }
        for index in steps.indices where index != pivot {
            let before = closure[pivot].contains(index)
            let after = closure[index].contains(pivot)
            let path = JSONPath.root.appending("steps").appending(index)
            if !before && !after {
                report(
                    path, "\"\(steps[index].name)\" runs neither before nor after the pivot \"\(steps[pivot].name)\", so it could still be running when the saga can no longer turn back; make the pivot depend on it, or it on the pivot")
            }
            if after, steps[index].compensation != nil {
                report(
                    path.appending("compensation"),
                    "\"\(steps[index].name)\" runs after the pivot \"\(steps[pivot].name)\": once the pivot succeeds the saga only goes forward, so this compensation would never run; remove it")
            }
        }
        return pivot
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.count <= 100, first.isASCIIAlphanumeric else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "." || $0 == "_" || $0 == "-" }
    }
}

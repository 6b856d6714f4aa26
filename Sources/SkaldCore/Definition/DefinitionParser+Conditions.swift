import Foundation

/// Steps that decide: `when`, `failWhen` and `retryWhen`, each a `Condition`.
extension DefinitionParser {
    /// How deep `all`, `any` and `not` may nest.
    static let maximumConditionDepth = 16

    /// The step's `when`, `failWhen` and `retryWhen`; nil when any of them has a problem (reported).
    mutating func stepConditions(_ members: [String: JSONValue], at path: JSONPath) -> (Condition?, Condition?, Condition?)? {
        let problemsBefore = problems.count
        var parsed: [String: Condition] = [:]
        for field in ["when", "failWhen", "retryWhen"] {
            guard let value = members[field] else { continue }
            if let condition = condition(value, at: path.appending(field), depth: 0) { parsed[field] = condition }
        }
        if members["request"] == nil {
            for field in ["failWhen", "retryWhen"] where members[field] != nil {
                report(
                    path.appending(field),
                    "\"\(field)\" judges the answer to the step's \"request\", and this step makes none; put the test in \"when\" of the step after it instead")
            }
        }
        if members["when"] != nil, members["pivot"]?.boolValue == true {
            report(
                path.appending("when"),
                "the pivot, the point of no return, cannot be skipped: the saga must know whether it passed it; put \"when\" on the steps around it instead")
        }
        guard problems.count == problemsBefore else { return nil }
        return (parsed["when"], parsed["failWhen"], parsed["retryWhen"])
    }

    mutating func condition(_ value: JSONValue, at path: JSONPath, depth: Int) -> Condition? {
        let example = #"{"value": "{{steps.kyc.response.body.decision}}", "equals": "approved"}"#
        guard case .object(let members) = value else {
            report(path, "a condition must be an object such as \(example), or {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}}; it is \(value.typeName)")
            return nil
        }
        guard depth < Self.maximumConditionDepth else {
            report(path, "conditions nest more than \(Self.maximumConditionDepth) deep; write this one flatter")
            return nil
        }
        let logical = ["all", "any", "not"].filter { members[$0] != nil }
        if let kind = logical.first {
            guard members.count == 1 else {
                let other = members.keys.sorted().first { $0 != kind } ?? ""
                report(path.appending(other), "\"\(kind)\" stands alone in its object; put \"\(other)\" in a condition of its own inside it")
                return nil
            }
            let inner = members[kind]!
            if kind == "not" { return condition(inner, at: path.appending(kind), depth: depth + 1).map(Condition.not) }
            guard case .array(let items) = inner, !items.isEmpty else {
                report(path.appending(kind), "\"\(kind)\" must be a non-empty array of conditions, for example [\(example)]")
                return nil
            }
            var conditions: [Condition] = []
            var failed = false
            for (index, item) in items.enumerated() {
                if let parsed = condition(item, at: path.appending(kind).appending(index), depth: depth + 1) { conditions.append(parsed) } else { failed = true }
            }
            if failed { return nil }
            return kind == "all" ? .all(conditions) : .any(conditions)
        }
        let allowed = ["value"] + Condition.comparisons
        if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
            report(
                path.appending(unknown),
                "\"\(unknown)\" is not part of a condition\(Suggestion.didYouMean(unknown, in: allowed + ["all", "any", "not"])); a test is \"value\" with one of \(Condition.comparisons.joined(separator: ", ")), and tests combine with all, any and not")
            return nil
        }
        guard let subject = members["value"] else {
            report(path, "a test needs \"value\", what it looks at, such as \"{{steps.kyc.response.body.decision}}\"; for example \(example)")
            return nil
        }
        let comparisons = Condition.comparisons.filter { members[$0] != nil }
        guard comparisons.count == 1, let kind = comparisons.first, let operand = members[kind] else {
            report(
                comparisons.count > 1 ? path.appending(comparisons[1]) : path,
                comparisons.isEmpty
                    ? "a test needs one comparison: \(Condition.comparisons.joined(separator: ", ")); for example \(example)"
                    : "a test has one comparison, and this one has \"\(comparisons[0])\" and \"\(comparisons[1])\"; combine two tests with \"all\"")
            return nil
        }
        guard let template = templateValue(subject, at: path.appending("value")) else { return nil }
        let operandPath = path.appending(kind)
        let comparison: Condition.Comparison
        switch kind {
        case "equals":
            comparison = .equals(operand)
        case "in":
            guard case .array(let options) = operand, !options.isEmpty else {
                report(operandPath, "\"in\" must be a non-empty array of the values that pass, for example [\"approved\", \"manual\"]")
                return nil
            }
            comparison = .isIn(options)
        case "lessThan", "greaterThan":
            guard operand.isNumber || operand.stringValue != nil else {
                report(operandPath, "\"\(kind)\" compares with a number, or a text (such as an RFC 3339 time), not \(operand.typeName)")
                return nil
            }
            comparison = kind == "lessThan" ? .lessThan(operand) : .greaterThan(operand)
        case "exists":
            guard let flag = operand.boolValue else {
                report(operandPath, "\"exists\" must be true (the value is there and not null) or false")
                return nil
            }
            comparison = .exists(flag)
        default:
            guard let pattern = operand.stringValue else {
                report(operandPath, "\"matches\" must be a regular expression, as a string, such as \"^GB[0-9]+$\"")
                return nil
            }
            do {
                _ = try Regex(pattern)
            } catch {
                report(operandPath, "\"\(pattern)\" is not a regular expression Skald can read: \(error)")
                return nil
            }
            comparison = .matches(pattern)
        }
        if template.references.isEmpty {
            report(path.appending("value"), "\"value\" has no {{…}} reference, so the test always comes out the same; read the input or a response, such as \"{{input.amount}}\"")
            return nil
        }
        return .test(template, comparison)
    }

    /// A step that may be skipped (it has `when`) has no response or callback output: the other steps may read them
    /// only with a `??` default.
    mutating func checkSkippable(_ steps: [(index: Int, step: StepDefinition)]) {
        let skippable = Set(steps.filter { $0.step.when != nil }.map(\.step.name))
        guard !skippable.isEmpty else { return }
        for (index, step) in steps {
            let path = JSONPath.root.appending("steps").appending(index)
            var places: [(String, [TemplateReference])] = []
            if let request = step.request { places.append(("request", request.requiredReferences)) }
            if let compensation = step.compensation { places.append(("compensation", compensation.requiredReferences)) }
            if let forEach = step.forEach { places.append(("forEach", forEach.requiredReferences)) }
            for (field, condition) in [("when", step.when), ("failWhen", step.failWhen), ("retryWhen", step.retryWhen)] {
                if let condition { places.append((field, condition.references)) }
            }
            for (field, references) in places {
                for reference in references {
                    let target: String
                    switch reference {
                    case .stepStatus(let name), .stepBody(let name, _), .stepCallbackOutput(let name, _), .stepResponses(let name, _),
                        .stepOutput(let name, _):
                        target = name
                    default: continue
                    }
                    // A step's own compensation and answer tests run only when it ran; a test copes with an absent value.
                    guard skippable.contains(target), target != step.name, !["when", "failWhen", "retryWhen"].contains(field) else { continue }
                    report(
                        path.appending(field),
                        "{{\(reference)}} reads step \"\(target)\", which has \"when\" and may be skipped, and then has no response; give the reference a default, such as {{\(reference) ?? \"none\"}}")
                }
            }
        }
    }
}

/// A run's output: `"output": {…}` at the top of a saga.
extension DefinitionParser {
    mutating func runOutput(_ value: JSONValue, steps: [StepDefinition], names: [String], inputSchema: InputSchema?) -> TemplateValue? {
        let path = JSONPath.root.appending("output")
        guard case .object = value else {
            report(path, "\"output\" must be an object of what a completed run gives back, such as {\"accountId\": \"{{steps.open.response.body.id}}\"}; it is \(value.typeName)")
            return nil
        }
        guard let template = templateValue(value, at: path) else { return nil }
        let problemsBefore = problems.count
        // Every step has run (or was skipped) by the time a run completes, so any step's response may be read.
        checkReferences(
            template.references.map { (path, $0) }, stepIndex: names.count, includingOwn: false, names: names, earlier: Set(names.indices),
            inputSchema: inputSchema)
        let skippable = Set(steps.filter { $0.when != nil }.map(\.name))
        for reference in template.requiredReferences {
            switch reference {
            case .env(let name):
                report(path, "{{env.\(name)}}: the output is worked out from what the run stored, whenever it is read, so it cannot read the server's environment; put the value in the input or a response")
            case .stepStatus(let step), .stepBody(let step, _), .stepCallbackOutput(let step, _), .stepResponses(let step, _),
                .stepOutput(let step, _):
                // (A `where` here would guard only the last pattern.)
                guard skippable.contains(step) else { continue }
                report(path, "{{\(reference)}} reads step \"\(step)\", which has \"when\" and may be skipped, and then has no response; give the reference a default, such as {{\(reference) ?? null}}")
            default:
                continue
            }
        }
        return problems.count == problemsBefore ? template : nil
    }
}

extension SagaDefinition {
    /// The output of a completed run, worked out from what it stored (`input` as it may be shown); nil when the saga
    /// declares none or the run is not completed.
    public func output(of state: RunState, input: JSONValue) -> Result<JSONValue, TemplateRenderError>? {
        guard let output, state.status == .completed else { return nil }
        var responses: [String: StepResponse] = [:]
        var outputs: [String: JSONValue] = [:]
        for step in state.steps {
            if let response = step.response { responses[step.name] = response }
            if let value = step.wait?.output { outputs[step.name] = value }
        }
        var context = TemplateContext(input: input, runID: state.id, env: [:], responses: responses, callbackOutputs: outputs, callback: nil)
        context.itemResponses = state.itemResponses()
        do {
            return .success(try context.render(output))
        } catch {
            return .failure(error)
        }
    }
}

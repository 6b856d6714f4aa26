import Foundation

/// The templates' references: that each names something the run has when the template is rendered.
extension DefinitionParser {
    // MARK: - References

    mutating func checkReferences(
        _ steps: [(index: Int, step: StepDefinition)], names: [String], reachable: [Set<Int>]?, inputSchema: InputSchema?
    ) {
        for (index, step) in steps {
            let stepPath = JSONPath.root.appending("steps").appending(index)
            let earlier = reachable?[index]
            if let forEach = step.forEach {
                checkReferences(
                    forEach.references.map { (stepPath.appending("forEach"), $0) }, stepIndex: index, includingOwn: false, names: names,
                    earlier: earlier, inputSchema: inputSchema)
            }
            if let request = step.request {
                checkCall(
                    request, at: stepPath.appending("request"), stepIndex: index, includingOwn: false, names: names, earlier: earlier,
                    inputSchema: inputSchema)
            }
            if let child = step.action.child {
                checkReferences(
                    child.input.references.map { (stepPath.appending("saga").appending("input"), $0) }, stepIndex: index, includingOwn: false,
                    names: names, earlier: earlier, inputSchema: inputSchema)
            }
            for (field, template) in step.action.templates {
                let fieldPath = field.reduce(stepPath) { $0.appending($1) }
                checkReferences(
                    template.references.map { (fieldPath, $0) }, stepIndex: index, includingOwn: false, names: names,
                    earlier: earlier, inputSchema: inputSchema)
            }
            for (field, condition, own) in [("when", step.when, false), ("failWhen", step.failWhen, true), ("retryWhen", step.retryWhen, true)] {
                guard let condition else { continue }
                checkReferences(
                    condition.references.map { (stepPath.appending(field), $0) }, stepIndex: index, includingOwn: own, names: names,
                    earlier: earlier, inputSchema: inputSchema)
            }
            if let compensation = step.compensation {
                checkCall(
                    compensation, at: stepPath.appending("compensation"), stepIndex: index, includingOwn: true, names: names,
                    earlier: earlier, inputSchema: inputSchema)
            }
        }
    }

    /// - Parameter earlier: the steps certain to have succeeded before this one runs (nil when the graph has a cycle).
    mutating func checkCall(
        _ call: CallDefinition, at path: JSONPath, stepIndex: Int, includingOwn: Bool, names: [String], earlier: Set<Int>?,
        inputSchema: InputSchema?
    ) {
        checkReferences(call.locatedReferences(at: path), stepIndex: stepIndex, includingOwn: includingOwn, names: names, earlier: earlier, inputSchema: inputSchema)
    }

    mutating func checkReferences(
        _ references: [(JSONPath, TemplateReference)], stepIndex: Int, includingOwn: Bool, names: [String], earlier: Set<Int>?,
        inputSchema: InputSchema?
    ) {
        for (fieldPath, reference) in references {
            switch reference {
            case .stepStatus(let step), .stepBody(let step, _), .stepCallbackOutput(let step, _), .stepResponses(let step, _),
                .stepOutput(let step, _):
                guard let target = names.firstIndex(of: step) else {
                    let known = names.filter { !$0.isEmpty }
                    report(fieldPath, "{{\(reference)}} refers to step \"\(step)\", which does not exist\(Suggestion.didYouMean(step, in: known)); the steps are \(known.joined(separator: ", "))")
                    continue
                }
                let kind = stepKinds[step] ?? nil
                if case .stepResponses = reference {
                    if !forEachSteps.contains(step) {
                        report(fieldPath, "{{\(reference)}} reads the answers of step \"\(step)\" item by item, but it declares no \"forEach\"; read its one answer as {{steps.\(step).response.body…}}")
                        continue
                    }
                    if target == stepIndex {
                        report(fieldPath, "{{\(reference)}}: a forEach step's own calls read their own item's answer as {{steps.\(step).response.body…}}, not the answers of every item")
                        continue
                    }
                } else if forEachSteps.contains(step), !(target == stepIndex && includingOwn) {
                    report(fieldPath, "{{\(reference)}}: step \"\(step)\" runs once per item of its forEach, so it has one answer per item; read them as {{steps.\(step).responses[0].body…}} (or the whole list as {{steps.\(step).responses}})")
                    continue
                }
                if case .stepOutput = reference {
                    if kind != .child {
                        report(fieldPath, "{{\(reference)}} reads the output of the child saga of step \"\(step)\", which runs none; only a step with \"saga\" has an output (a call's answer is {{steps.\(step).response.body}})")
                        continue
                    }
                } else if kind == .child {
                    report(fieldPath, "{{\(reference)}}: step \"\(step)\" runs a child saga, which gives an output, not a response; read it as {{steps.\(step).output…}}")
                    continue
                }
                if case .stepCallbackOutput = reference, kind != .callback {
                    report(fieldPath, "{{\(reference)}} reads the callback output of step \"\(step)\", which declares no \"callback\"; only a step completed by its participant's callback has one (its answer is {{steps.\(step).response.body}})")
                } else if let kind, kind != .callback, kind != .child {
                    report(fieldPath, "{{\(reference)}} reads the response of step \"\(step)\", which is \(kind == .approval ? "an approval" : "a sleep") and has no response; only steps with a \"request\" have one")
                } else if target == stepIndex {
                    if !includingOwn {
                        report(fieldPath, "{{\(reference)}} refers to this step's own response, which does not exist before the request is sent; only a compensation may use it")
                    }
                } else if let earlier, !earlier.contains(target) {
                    if target > stepIndex && !usesDependsOn {
                        report(fieldPath, "{{\(reference)}} refers to step \"\(step)\", which runs after this one; a call can only use the responses of earlier steps\(includingOwn ? " and of its own step" : "")")
                    } else {
                        report(fieldPath, "{{\(reference)}} refers to step \"\(step)\", which may not have run when this call is made: it is not among the steps this one depends on, directly or through others; add \"\(step)\" to this step's dependsOn")
                    }
                }
            case .input(let inputPath):
                if let inputSchema, let gap = inputSchema.undeclaredPrefix(of: inputPath) {
                    let known = gap.known.isEmpty ? "" : " (declared: \(gap.known.joined(separator: ", ")))"
                    report(fieldPath, "{{\(reference)}} uses \(gap.walked).\(gap.missing), which inputSchema does not declare\(Suggestion.didYouMean(gap.missing, in: gap.known)); declare it under inputSchema or fix the reference\(known)")
                }
            case .stepIdempotencyKey(let step):
                // Known for every step from the start, so any step may use it.
                if !names.contains(step) {
                    let known = names.filter { !$0.isEmpty }
                    report(fieldPath, "{{\(reference)}} refers to step \"\(step)\", which does not exist\(Suggestion.didYouMean(step, in: known)); the steps are \(known.joined(separator: ", "))")
                } else if forEachSteps.contains(step), names.firstIndex(of: step) != stepIndex {
                    report(fieldPath, "{{\(reference)}}: step \"\(step)\" runs once per item of its forEach, and each item's call has its own key (RUN:\(step)[i]:forward); only the step's own calls can read it")
                }
            case .item, .index:
                let own = stepIndex < names.count ? names[stepIndex] : ""
                let field = fieldPath.description
                if !forEachSteps.contains(own) {
                    report(fieldPath, "{{\(reference)}} is the item of a forEach step's call, and this \(stepIndex < names.count ? "step declares no \"forEach\"" : "is not a step's call"); add \"forEach\": \"{{input.items}}\" to the step, or remove the reference")
                } else if field.hasSuffix(".when") || field.hasSuffix(".forEach") {
                    report(fieldPath, "{{\(reference)}} is known only in the call made for an item (its request, compensation, failWhen and retryWhen); \(field.hasSuffix(".when") ? "\"when\" decides once for the whole step" : "\"forEach\" names the items") and cannot read it")
                }
            case .callbackURL, .callbackToken:
                let own = stepIndex < names.count ? names[stepIndex] : ""
                if includingOwn || (stepKinds[own] ?? nil) != .callback || !fieldPath.description.contains(".request") {
                    report(fieldPath, "{{\(reference)}} is only known in the request of a step that declares \"callback\" (it completes that attempt); add \"callback\": {\"timeout\": \"2h\"} to the step, or remove the reference")
                }
            case .runID, .env:
                break
            }
        }
    }
}

import Foundation
import SkaldCore

/// What the run's templates read, worked out from the driver's state.
extension RunDriver {
    /// What templates read: the run's input and answers; for an item of a forEach step (`position`), its item, and
    /// its own answer as its step's; for a callback step's attempt (`key`), the URL that completes it.
    func context(at position: Int? = nil, callbackOf key: AttemptKey? = nil) -> TemplateContext {
        var responses: [String: StepResponse] = [:]
        var outputs: [String: JSONValue] = [:]
        var fannedOut = false
        for stepState in state.steps.prefix(machine.saga.steps.count) {
            if let response = stepState.response { responses[stepState.name] = response }
            if let output = stepState.wait?.output { outputs[stepState.name] = output }
            if stepState.elements != nil { fannedOut = true }
        }
        var element: (step: String, index: Int, item: JSONValue)?
        if let position = position ?? key?.step, let item = state.steps[position].element {
            let items = try? context().resolve(machine.saga.steps[machine.definitionIndex(of: position, in: state)].forEach!.wholeReference!)
            element = (item.step, item.index, items?[item.index] ?? .null)
            responses[item.step] = state.steps[position].response
        }
        var callback: (url: String, token: String)?
        if let key, key.phase == .forward, let token = state.steps[key.step].wait?.token {
            // The base is filled in by `launch` once known; the token is what matters here.
            callback = (engine.publicURL.map { CallbackToken.url(base: $0, token: token) } ?? "", token)
        }
        var context = TemplateContext(
            input: input, runID: runID, env: engine.configuration.environment, responses: responses, callbackOutputs: outputs, callback: callback)
        // Every item's answer, for the calls that read them (worked out per call, so not for each item's own call).
        let reader = (position ?? key?.step).map { machine.definitionIndex(of: $0, in: state) }
        if fannedOut, reader.map(machine.stepsReadingItemAnswers.contains) ?? true { context.itemResponses = state.itemResponses() }
        context.element = element
        return context
    }

    /// The items a due forEach step runs over, worked out from the input or an earlier answer.
    func items(of index: Int) -> Result<[JSONValue], TemplateRenderError> {
        guard let reference = machine.saga.steps[index].forEach?.wholeReference else {
            return .failure(TemplateRenderError(message: "the step declares no forEach"))
        }
        do {
            let value = try context().resolve(reference)
            if let problem = SagaDefinition.itemsProblem(value, of: reference) { return .failure(TemplateRenderError(message: problem)) }
            return .success(value.arrayValue ?? [])
        } catch {
            return .failure(error)
        }
    }
}

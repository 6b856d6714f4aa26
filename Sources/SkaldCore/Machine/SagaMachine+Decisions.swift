import Foundation

/// Steps that decide: a `when` tested as the step comes due, and `failWhen`/`retryWhen` tested on a 2xx answer.
/// The tests read the run's input and responses, which the driver holds; the machine says when they apply and what
/// follows from them.
extension SagaMachine {
    /// Whether step `index` is due and is to be tested by its `when` before it starts: nothing sent, nothing waited.
    public func decidesBeforeStarting(_ state: RunState, step index: Int) -> Bool {
        let step = state.steps[index]
        return index < saga.steps.count && saga.steps[index].when != nil && step.status == .running && step.attempts == 0 && step.wait == nil
    }

    /// Skips a due step whose `when` is false: it is never sent and never compensated, and the steps after it go on.
    public func skip(_ state: RunState, step index: Int, at now: Date) -> Transition {
        precondition(decidesBeforeStarting(state, step: index), "skip of step \(state.steps[index].name), which is not due to be tested")
        let before = state
        var state = state
        let name = state.steps[index].name
        state.steps[index].status = .skipped
        state.steps[index].dueAt = nil
        var events = [
            RunEvent(
                at: now, kind: .stepSkipped, step: name, phase: .forward,
                message: "\(name) skipped: its condition is false (\(saga.steps[index].when?.summary ?? ""))")
        ]
        advanceForward(&state, at: now, events: &events)
        return Transition(state: state, events: events, before: before)
    }

    /// A 2xx answer to step `index`'s forward request as its `failWhen` and `retryWhen` judge it (`context` as for the
    /// request; the answer is added to it): a refusal (nothing was applied), a retry (the participant is not done; a
    /// last one left so is an unknown outcome, since it accepted the work), or the answer as it came.
    /// `context` is built only for a step that has such a test (this runs for every answer).
    public func judge(
        _ outcome: AttemptOutcome, _ state: RunState, step index: Int, phase: Phase, context: @autoclosure () -> TemplateContext
    ) -> AttemptOutcome {
        let definition = definition(of: index, in: state)
        guard phase == .forward, case .succeeded(let response) = outcome, definition.failWhen != nil || definition.retryWhen != nil else {
            return outcome
        }
        var context = context()
        context.responses[definition.name] = response
        if let failWhen = definition.failWhen, failWhen.holds(in: context) {
            return .failed(
                AttemptFailure(
                    kind: .status, reason: "HTTP \(response.status), refused by failWhen: \(failWhen.summary)", isRetryable: false,
                    response: response, mayHaveApplied: false))
        }
        if let retryWhen = definition.retryWhen, retryWhen.holds(in: context) {
            return .failed(
                AttemptFailure(
                    kind: .status, reason: "HTTP \(response.status), not done yet by retryWhen: \(retryWhen.summary)", isRetryable: true,
                    response: response, mayHaveApplied: true))
        }
        return outcome
    }
}

import Foundation

/// Turning back: the forward work stopped, and the compensations scheduled in reverse as their dependents settle.
extension SagaMachine {
    /// Steps waiting for their first attempt or a retry will not be sent any more: the saga turned back.
    /// Attempts already in flight are left to finish.
    func stopForwardWork(_ state: inout RunState) {
        stopWaiting(&state, because: "the run turned back while it waited")
        for index in state.steps.indices where state.steps[index].status == .running && state.steps[index].dueAt != nil {
            state.steps[index].dueAt = nil
            let step = state.steps[index]
            state.steps[index].status = step.attempts == 0 ? .pending : step.outcomeUnknown ? .outcomeUnknown : .failed
        }
    }

    func beginCompensation(_ state: inout RunState, failure: RunFailure, at now: Date, events: inout [RunEvent]) {
        stopForwardWork(&state)
        state.status = .compensating
        state.failure = failure
        let toUndo = state.steps.indices.filter { awaitsCompensation(state, $0) }
        let withCompensation = toUndo.filter { definition(of: $0, in: state).isUndoable }
        let names = withCompensation.reversed().map { state.steps[$0].name }
        let shown = withCompensation.reversed().map { state.steps[$0].status == .outcomeUnknown ? "\(state.steps[$0].name) (outcome unknown)" : state.steps[$0].name }
        events.append(
            RunEvent(
                at: now, kind: .compensationStarted, step: failure.step,
                message: names.isEmpty
                    ? "\(failure.step.map { "\($0) failed" } ?? failure.reason), and no completed step has a compensation to run"
                        + (state.inFlightSteps.isEmpty ? "" : " yet (a step whose attempt is in flight is undone if it succeeds)")
                    : "\(failure.step.map { "\($0) failed" } ?? failure.reason), so the completed steps\(withCompensation.contains { state.steps[$0].status == .outcomeUnknown } ? ", and those whose outcome is unknown," : "") are undone, each after the steps that depended on it: \(shown.joined(separator: ", "))",
                data: ["order": .array(names.map(JSONValue.string)), "reason": .string(failure.reason)]))
        advanceCompensation(&state, at: now, events: &events)
    }

    /// Schedules every compensation whose dependents are settled, and ends the run once nothing is left to do.
    func advanceCompensation(_ state: inout RunState, at now: Date, events: inout [RunEvent]) {
        guard state.status == .compensating else { return }
        refreshItems(&state, at: now, events: &events)
        var halted = state.steps.contains { $0.status == .compensationFailed }
        if !halted {
            for index in state.steps.indices.reversed() where awaitsCompensation(state, index) {
                let stepIndex = definitionIndex(of: index, in: state)
                // An item waits while its step has maxConcurrency compensations under way.
                if stepIndex != index && itemCompensationsFull(state, forEachStep: stepIndex) { continue }
                let stepDefinition = saga.steps[stepIndex]
                let blocked = dependents[stepIndex].contains { other in
                    switch state.steps[other].status {
                    case .running, .waiting, .compensating: true
                    default: awaitsCompensation(state, other)
                    }
                }
                if blocked { continue }
                if state.steps[index].status == .outcomeUnknown && stepDefinition.compensationReadsOwnResponse {
                    // The compensation needs the answer that never came: it cannot be sent, so a person must act.
                    let name = state.steps[index].name
                    let reason = "its outcome is unknown and its compensation reads {{steps.\(name).response…}}, which never came; undo it by hand if it was applied and resolve, or name the action with {{steps.\(name).idempotencyKey}}"
                    state.steps[index].status = .compensationFailed
                    state.steps[index].lastError = reason
                    if state.compensationFailure == nil { state.compensationFailure = RunFailure(step: name, reason: reason) }
                    events.append(
                        RunEvent(
                            at: now, kind: .compensationFailed, step: name, phase: .compensate,
                            message: "the compensation of \(name) cannot be sent: \(reason)", data: ["error": .string(reason)]))
                    halted = true
                    break
                }
                if !stepDefinition.isUndoable {
                    state.steps[index].status = .compensationSkipped
                    events.append(
                        RunEvent(
                            at: now, kind: .compensationSkipped, step: state.steps[index].name, phase: .compensate,
                            message: "\(state.steps[index].name) declares no compensation; nothing to undo"))
                } else {
                    state.steps[index].status = .compensating
                    state.steps[index].dueAt = now
                }
            }
            refreshItems(&state, at: now, events: &events)
        }
        let busy = state.steps.contains { $0.status == .running || $0.status == .waiting || $0.status == .compensating }
        guard !busy else { return }
        if halted {
            state.status = .compensationFailed
            let failure = state.compensationFailure
            events.append(
                RunEvent(
                    at: now, kind: .runCompensationFailed, step: failure?.step,
                    message: "run stopped in compensation_failed: the compensation of \(failure?.step ?? "a step") failed (\(failure?.reason ?? "unknown")); retry it or resolve it by hand"))
        } else {
            state.status = .compensated
            let undone = state.steps.filter { $0.status.isUndone && $0.elements == nil }.count
            let leftUnknown = state.steps.filter { $0.status == .outcomeUnknown }.map(\.name)
            events.append(
                RunEvent(
                    at: now, kind: .runCompensated,
                    message: "run compensated: \(state.failure?.summary ?? "a step failed"); \(undone) completed step\(undone == 1 ? " was" : "s were") undone"
                        + (leftUnknown.isEmpty ? "" : "; the outcome of \(leftUnknown.joined(separator: ", ")) is unknown and was left as it is")))
        }
    }
}

import Foundation

/// Small pieces the machine's messages and event data are made of.
extension SagaMachine {
    static func label(_ step: String, _ phase: Phase) -> String {
        phase == .forward ? step : "\(step) (compensation)"
    }

    static func millis(_ duration: Duration) -> JSONValue {
        .int(Int64(duration.milliseconds.rounded()))
    }

    static func merging(_ base: JSONValue, _ extra: [String: JSONValue]) -> JSONValue {
        var members = base.objectValue ?? [:]
        for (key, value) in extra { members[key] = value }
        return .object(members)
    }

}

/// When the run's driver must wake, what awaits compensation, and the words the machine's messages use.
extension SagaMachine {
    /// The next moment the driver must wake: an attempt due, or the deadline while it can still turn the run back.
    ///
    /// - Parameter waiting: steps whose due attempt already waits for something else (an engine slot, a
    ///   participant's bulkhead or probe): their due time, already past, is not a reason to wake.
    public func nextWakeAt(_ state: RunState, excluding waiting: Set<Int> = []) -> Date? {
        let deadline = state.status == .running && state.steps.contains { $0.status == .running || $0.status == .waiting } && !isAtOrPastPivot(state)
            ? state.deadlineAt : nil
        let due = waiting.isEmpty ? state.nextDueAt : state.steps.indices.filter { !waiting.contains($0) }.compactMap { state.steps[$0].dueAt }.min()
        return [due, deadline].compactMap { $0 }.min()
    }

    /// Whether the step is waiting to be compensated: it succeeded, or its outcome is unknown and it declares a
    /// compensation it may run for that.
    func awaitsCompensation(_ state: RunState, _ index: Int) -> Bool {
        // A forEach step is undone item by item; it has no compensation of its own to send.
        guard state.steps[index].elements == nil else { return false }
        switch state.steps[index].status {
        // A step resolved by hand was applied (by a person): it is undone like a succeeded one. (It can only be
        // resolved where the run no longer turns back, so this is for safety's sake.)
        case .succeeded, .resolved: return true
        case .outcomeUnknown:
            let definition = definition(of: index, in: state)
            return definition.compensateUnknown && definition.isUndoable && index != saga.pivot
        default: return false
        }
    }

    static func unknownBecause(_ failure: AttemptFailure) -> String {
        guard failure.mayHaveApplied else { return "an earlier attempt got no answer" }
        switch failure.kind {
        case .timeout: return "no answer before the timeout"
        case .responseTooLarge: return "the answer was too large to read"
        default: return "the connection broke after the request was sent"
        }
    }

    static func who(_ name: String) -> String { name.isEmpty ? "an operator" : name }
}

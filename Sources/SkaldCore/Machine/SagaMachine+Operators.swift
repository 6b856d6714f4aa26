import Foundation

/// An operator's inputs, and the saga's deadline: cancel, retry, resolve, resume and abandon. Each returns nil when the
/// run's state does not allow it.
extension SagaMachine {
    /// An operator's cancel: no new forward attempt starts and the completed steps are compensated.
    /// Attempts already in flight finish; if they succeed, they are compensated too.
    /// Returns nil when the run is not running (already compensating or finished).
    /// Nil when the run is not running, or when its pivot has succeeded or is in flight: past the point of no
    /// return a run can only go forward (a pivot that succeeds after a cancel would have nothing before it left).
    ///
    /// A run stuck because its pivot's outcome is unknown may be cancelled too: the operator found out that the
    /// pivot was not applied, and the steps before it are compensated.
    public func cancel(_ state: RunState, reason: String, by who: String = "", at now: Date) -> Transition? {
        guard (state.status == .running && !isAtOrPastPivot(state)) || isStuckAtUndecidedPivot(state) else { return nil }
        let before = state
        var state = state
        state.stuck = nil
        if state.status == .stuck { state.status = .running }
        stopForwardWork(&state)
        let why = reason.isEmpty ? "cancelled by \(Self.who(who))" : "cancelled by \(Self.who(who)): \(reason)"
        var events = [RunEvent(at: now, kind: .runCancelled, message: "run \(why)", data: ["reason": .string(reason), "by": .string(who)])]
        let inFlight = state.inFlightSteps.map { state.steps[$0].name }
        if !inFlight.isEmpty {
            events.append(
                RunEvent(
                    at: now, kind: .runCancelled,
                    message: "waiting for the attempt in flight of \(inFlight.joined(separator: ", ")); if it succeeds it is compensated too"))
        }
        beginCompensation(&state, failure: RunFailure(step: nil, reason: why), at: now, events: &events)
        return Transition(state: state, events: events, before: before)
    }

    /// The saga's deadline passed while going forward: no new forward attempt starts and the run compensates.
    /// Returns nil when there is nothing to do (no deadline yet, not running, or at or past the pivot: a pivot in
    /// flight, or one that may have been applied, settles the run's direction before the deadline can).
    public func deadlinePassed(_ state: RunState, at now: Date) -> Transition? {
        guard state.status == .running, let deadlineAt = state.deadlineAt, now >= deadlineAt, !isAtOrPastPivot(state),
            let deadline = saga.deadline
        else { return nil }
        let before = state
        var state = state
        let reason = "the saga deadline of \(DurationText.format(deadline)) passed"
        var events = [RunEvent(at: now, kind: .deadlinePassed, message: "\(reason): no new forward attempt starts", data: ["deadlineMs": Self.millis(deadline)])]
        beginCompensation(&state, failure: RunFailure(step: nil, reason: reason), at: now, events: &events)
        return Transition(state: state, events: events, before: before)
    }

    /// An operator's retry of a run in `compensation_failed`: the failed compensation (of `step`, or every failed
    /// one) runs again with its retry policy afresh, then the compensation walk continues.
    public func retryCompensation(_ state: RunState, step name: String? = nil, by who: String = "", note: String = "", at now: Date)
        -> Transition?
    {
        guard state.status == .compensationFailed else { return nil }
        // A forEach step's compensation is its items': naming the step retries its items that failed.
        let targets = state.steps.indices.filter { position in
            let step = state.steps[position]
            return step.status == .compensationFailed && step.elements == nil && (name == nil || step.name == name || step.element?.step == name)
        }
        guard !targets.isEmpty else { return nil }
        let before = state
        var state = state
        for index in targets {
            state.steps[index].status = .compensating
            state.steps[index].dueAt = now
            state.steps[index].compensationAttemptsBase = state.steps[index].compensationAttempts
            state.steps[index].compensationFirstAttemptAt = nil
        }
        let retried = targets.map { state.steps[$0].name }
        state.status = .compensating
        state.compensationFailure = nil
        var ignored: [RunEvent] = []
        refreshItems(&state, at: now, events: &ignored)
        let event = RunEvent(
            at: now, kind: .compensationRetried,
            message: "\(Self.who(who)) retried the compensation of \(retried.joined(separator: ", "))\(note.isEmpty ? "" : ": \(note)")",
            data: ["steps": .array(retried.map(JSONValue.string)), "by": .string(who), "note": .string(note)])
        return Transition(state: state, events: [event], before: before)
    }

    /// An operator records that a step was done by hand, and the run goes on from there.
    ///
    /// - On a run in `compensation_failed`, `step`'s failed compensation was undone by hand: it becomes
    ///   `compensation_resolved` and the compensation walk continues.
    /// - On a stuck run, `step` failed for good after the pivot (or is the pivot, its outcome unknown) and its work
    ///   was done by hand: it becomes `resolved`, counts as succeeded, and the steps after it are sent. Later steps
    ///   that read its response (without a `??` default) need `response`: the body they read, as if the
    ///   participant had answered it (its status reads as 200).
    ///
    /// Nil when the run is in neither state, `step` is not such a step, a later step needs a response and none is
    /// given (`stepsReadingResponse` names them), or a response is given for a compensation.
    public func resolve(
        _ state: RunState, step name: String, note: String, by who: String = "", response: JSONValue? = nil, at now: Date
    ) -> Transition? {
        // A forEach step is resolved item by item (`STEP[i]`): its own status only sums theirs up.
        guard let index = state.steps.firstIndex(where: { $0.name == name }), state.steps[index].elements == nil else { return nil }
        let before = state
        var state = state
        let resolution = StepResolution(by: who, note: note, at: now)
        var events: [RunEvent] = []
        switch (state.status, state.steps[index].status) {
        case (.compensationFailed, .compensationFailed):
            // A response is what later steps read of a forward step; an undo done by hand has none to give.
            guard response == nil else { return nil }
            state.steps[index].status = .compensationResolved
            state.steps[index].lastError = nil
            state.steps[index].resolution = resolution
            events.append(
                RunEvent(
                    at: now, kind: .compensationResolved, step: name, phase: .compensate,
                    message: "\(Self.who(who)) resolved the compensation of \(name) by hand: \(note)",
                    data: ["note": .string(note), "by": .string(who)]))
            let stillFailed = state.steps.indices.filter { state.steps[$0].status == .compensationFailed && state.steps[$0].elements == nil }
            state.compensationFailure = stillFailed.first.map { RunFailure(step: state.steps[$0].name, reason: state.steps[$0].lastError ?? "") }
            state.status = .compensating
            advanceCompensation(&state, at: now, events: &events)
        case (.stuck, .failed), (.stuck, .outcomeUnknown):
            // Only where the run can no longer turn back: past the pivot, or the undecided pivot itself.
            guard isPastPivot(state) || index == saga.pivot else { return nil }
            if response == nil && !stepsReadingResponse(of: index, in: state).isEmpty { return nil }
            state.steps[index].status = .resolved
            state.steps[index].outcomeUnknown = false
            state.steps[index].lastError = nil
            state.steps[index].resolution = resolution
            state.steps[index].response = response.map { StepResponse(status: 200, body: $0) }
            // A callback step's later steps read the callback's output: the response given stands for it.
            if definition(of: index, in: state).action.callback != nil, let response { state.steps[index].wait?.output = response }
            events.append(
                RunEvent(
                    at: now, kind: .stepResolved, step: name, phase: .forward,
                    message: "\(Self.who(who)) resolved \(name) by hand: \(note); the run goes on from it",
                    data: ["note": .string(note), "by": .string(who), "response": response ?? .null]))
            if index == saga.pivot {
                events.append(
                    RunEvent(
                        at: now, kind: .pivotPassed, step: name,
                        message: "\(name) is the pivot: from here the saga only goes forward; later failures are retried, then wait for a person"))
            }
            // Another step that failed for good keeps the run stuck once nothing else can move.
            let stillFailed = state.steps.indices.first { state.steps[$0].failedForward && state.steps[$0].elements == nil }
            state.stuck = stillFailed.map { RunFailure(step: state.steps[$0].name, reason: state.steps[$0].lastError ?? "failed") }
            state.status = .running
            advanceForward(&state, at: now, events: &events)
        default:
            return nil
        }
        return Transition(state: state, events: events, before: before)
    }

    /// The steps not yet done whose request reads the response of step `index` without a `??` default: resolving
    /// that step by hand needs the response they read.
    public func stepsReadingResponse(of index: Int, in state: RunState) -> [String] {
        let stepIndex = definitionIndex(of: index, in: state)
        let name = saga.steps[stepIndex].name
        let isItem = stepIndex != index
        return saga.steps.indices.filter { other in
            !state.steps[other].status.isDone
                && (saga.steps[other].request?.requiredReferences ?? []).contains { reference in
                    switch reference {
                    // An item's answer is read through its step's answers; the step's own calls read their own item's.
                    case .stepResponses(let step, _): isItem && step == name
                    case .stepStatus(let step), .stepBody(let step, _), .stepCallbackOutput(let step, _): !isItem && step == name
                    default: false
                    }
                }
        }.map { saga.steps[$0].name }
    }

    /// An operator resumes a stuck run: the failed steps past the pivot are tried again with their retry policy afresh.
    public func resume(_ state: RunState, by who: String = "", note: String = "", at now: Date) -> Transition? {
        guard state.status == .stuck else { return nil }
        let before = state
        var state = state
        var resumed: [String] = []
        for index in state.steps.indices where state.steps[index].failedForward && state.steps[index].elements == nil {
            state.steps[index].status = .running
            state.steps[index].dueAt = now
            state.steps[index].attemptsBase = state.steps[index].attempts
            state.steps[index].firstAttemptAt = nil
            resumed.append(state.steps[index].name)
        }
        state.status = .running
        state.stuck = nil
        var ignored: [RunEvent] = []
        refreshItems(&state, at: now, events: &ignored)
        let event = RunEvent(
            at: now, kind: .runResumed,
            message: "\(Self.who(who)) resumed the run: \(resumed.joined(separator: ", ")) will be tried again" + (note.isEmpty ? "" : " (\(note))"),
            data: ["steps": .array(resumed.map(JSONValue.string)), "by": .string(who), "note": .string(note)])
        return Transition(state: state, events: [event], before: before)
    }

    /// An operator stops a run without undoing anything more, because the business settled it by hand (a cancel,
    /// by contrast, compensates). Nothing new is sent; an attempt already in flight finishes and its outcome is
    /// recorded, but it changes nothing. Steps waiting for an attempt go back to what they were before it.
    /// Nil when the run has already ended (completed, compensated, abandoned); a run in compensation_failed may be
    /// abandoned.
    public func abandon(_ state: RunState, by who: String = "", note: String, at now: Date) -> Transition? {
        guard !state.status.isTerminal || state.status == .compensationFailed else { return nil }
        let before = state
        var state = state
        stopWaiting(&state, because: "the run was abandoned while it waited")
        for index in state.steps.indices where state.steps[index].dueAt != nil {
            let step = state.steps[index]
            state.steps[index].dueAt = nil
            switch step.status {
            case .running: state.steps[index].status = step.attempts == 0 ? .pending : step.outcomeUnknown ? .outcomeUnknown : .failed
            case .compensating: state.steps[index].status = step.response != nil ? .succeeded : .outcomeUnknown
            default: break
            }
        }
        state.status = .abandoned
        var message = "\(Self.who(who)) abandoned the run: \(note); nothing more is sent or undone"
        let inFlight = state.inFlightSteps.map { state.steps[$0].name }
        if !inFlight.isEmpty { message += " (the attempt in flight of \(inFlight.joined(separator: ", ")) finishes and is recorded)" }
        let left = Self.notUndone(state, saga: saga)
        if !left.isEmpty && before.status != .running { message += "; not undone: \(left.joined(separator: ", "))" }
        let event = RunEvent(
            at: now, kind: .runAbandoned, message: message,
            data: ["by": .string(who), "note": .string(note), "previousStatus": .string(before.status.rawValue)])
        return Transition(state: state, events: [event], before: before)
    }

    /// The steps that declare a compensation and may still be applied: succeeded, with an unknown outcome, or whose
    /// compensation failed. (A step without a compensation is never undone, so it is not "left" by an abandon.)
    public static func notUndone(_ state: RunState, saga: SagaDefinition) -> [String] {
        state.steps.indices.filter { index in
            index < saga.steps.count && saga.steps[index].isUndoable
                && [.succeeded, .resolved, .outcomeUnknown, .compensationFailed, .compensating].contains(state.steps[index].status)
        }.map { state.steps[$0].name }
    }
}

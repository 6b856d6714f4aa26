import Foundation

/// The rules of the steps that wait instead of calling: an approval by a person, a durable sleep.
///
/// A waiting step is a row, not a task: its status is `waiting` and its `dueAt` is when the wait ends on its own, so
/// the state that schedules attempts also schedules the end of every wait. The driver renders what the step needs
/// (the prompt, the time to sleep until) when the step is due in `running`, and hands it to `beginWait`; when the
/// wait's `dueAt` comes, `waitEnded`; a person's decision comes through `decide`.
extension SagaMachine {
    /// A due step that waits instead of calling begins its wait: it is `waiting` until `wait.until`.
    public func beginWait(_ state: RunState, step index: Int, wait: StepWait, at now: Date) -> Transition {
        let before = state
        var state = state
        let step = state.steps[index]
        guard step.status == .running, step.dueAt != nil, saga.steps[index].action.kind == wait.kind else {
            preconditionFailure("beginWait on step \(step.name) in status \(step.status) that is not a due \(wait.kind.rawValue)")
        }
        state.steps[index].status = .waiting
        state.steps[index].dueAt = wait.until
        state.steps[index].wait = wait
        state.steps[index].firstAttemptAt = now
        state.steps[index].lastError = nil
        let left = DurationText.format(Duration(secondsValue: max(0, wait.until.timeIntervalSince(now))))
        let until = wait.until.formatted(.iso8601)
        let message: String
        switch wait.kind {
        case .approval:
            message = "\(step.name) waits for a person to approve or reject it, for \(left) (until \(until)); no decision by then is a rejection"
                + (wait.prompt.map { ": \($0)" } ?? "")
        case .sleep:
            message = "\(step.name) sleeps \(left), until \(until)"
        }
        var data: [String: JSONValue] = ["kind": .string(wait.kind.rawValue), "until": .string(until)]
        if let prompt = wait.prompt { data["prompt"] = .string(prompt) }
        let event = RunEvent(at: now, kind: .waitStarted, step: step.name, phase: .forward, message: message, data: .object(data))
        return Transition(state: state, events: [event], before: before)
    }

    /// A due step that waits could not begin: what it needs could not be rendered (a `sleepUntil` that is not a time).
    /// Nothing was done outside Skald, so the step fails for good as a refusal and the run turns back.
    public func waitCannotBegin(_ state: RunState, step index: Int, reason: String, at now: Date) -> Transition {
        let before = state
        var state = state
        let step = state.steps[index]
        guard step.status == .running, step.dueAt != nil, saga.steps[index].action.kind != nil else {
            preconditionFailure("waitCannotBegin on step \(step.name) in status \(step.status) that is not a due wait")
        }
        state.steps[index].dueAt = nil
        state.steps[index].lastError = reason
        var events: [RunEvent] = []
        forwardFailedForGood(
            &state, index: index, failure: AttemptFailure(kind: .request, reason: reason, isRetryable: false), attempt: step.attempts, at: now,
            events: &events)
        return Transition(state: state, events: events, before: before)
    }

    /// The wait of a `waiting` step reached its `dueAt`: a sleep has ended (the step succeeds), an approval timed out
    /// (a rejection: the step fails for good and the run turns back).
    public func waitEnded(_ state: RunState, step index: Int, at now: Date) -> Transition {
        let before = state
        var state = state
        let step = state.steps[index]
        guard step.status == .waiting, let wait = step.wait, let due = step.dueAt, due <= now else {
            preconditionFailure("waitEnded on step \(step.name) in status \(step.status) whose wait has not ended")
        }
        var events: [RunEvent] = []
        let waited = DurationText.format(Duration(secondsValue: max(0, now.timeIntervalSince(wait.since))))
        switch wait.kind {
        case .sleep:
            events.append(
                RunEvent(
                    at: now, kind: .sleepEnded, step: step.name, phase: .forward, message: "\(step.name) slept \(waited) and is done",
                    data: ["waitedMs": .int(Int64(max(0, now.timeIntervalSince(wait.since)) * 1000))]))
            succeed(&state, index: index, at: now, events: &events)
        case .approval:
            let reason = "nobody approved or rejected it within \(DurationText.format(Duration(secondsValue: wait.until.timeIntervalSince(wait.since)))); a timeout counts as a rejection"
            events.append(
                RunEvent(
                    at: now, kind: .stepRejected, step: step.name, phase: .forward, message: "\(step.name) was rejected: \(reason)",
                    data: ["by": .string(""), "note": .string(""), "timedOut": .bool(true)]))
            fail(&state, index: index, reason: reason, at: now, events: &events)
        }
        return Transition(state: state, events: events, before: before)
    }

    /// A person approves (the step succeeds and the run goes on) or rejects (the step fails for good and the run
    /// compensates what came before) a step waiting for approval. Nil when `step` is not waiting for one.
    public func decide(_ state: RunState, step name: String, approve: Bool, by who: String, note: String, at now: Date) -> Transition? {
        guard state.status == .running, let index = state.steps.firstIndex(where: { $0.name == name }),
            state.steps[index].status == .waiting, state.steps[index].wait?.kind == .approval
        else { return nil }
        let before = state
        var state = state
        state.steps[index].resolution = StepResolution(by: who, note: note, at: now)
        var events: [RunEvent] = []
        let data: JSONValue = ["by": .string(who), "note": .string(note), "timedOut": false]
        if approve {
            events.append(
                RunEvent(
                    at: now, kind: .stepApproved, step: name, phase: .forward,
                    message: "\(Self.who(who)) approved \(name)\(note.isEmpty ? "" : ": \(note)")", data: data))
            succeed(&state, index: index, at: now, events: &events)
        } else {
            let reason = "rejected by \(Self.who(who))\(note.isEmpty ? "" : ": \(note)")"
            events.append(RunEvent(at: now, kind: .stepRejected, step: name, phase: .forward, message: "\(name) was \(reason)", data: data))
            fail(&state, index: index, reason: reason, at: now, events: &events)
        }
        return Transition(state: state, events: events, before: before)
    }

    /// The steps of a running run that wait for a person's decision.
    public func awaitingDecision(_ state: RunState) -> [Int] {
        state.status == .running ? state.waitingSteps.filter { state.steps[$0].wait?.kind == .approval } : []
    }

    /// Steps that wait stop waiting: the run turned back or was abandoned. Nothing was done outside Skald, so each
    /// ends failed (the run does not undo it), with `why` as its error.
    func stopWaiting(_ state: inout RunState, because why: String) {
        for index in state.waitingSteps {
            state.steps[index].status = .failed
            state.steps[index].dueAt = nil
            state.steps[index].lastError = why
        }
    }

    private func succeed(_ state: inout RunState, index: Int, at now: Date, events: inout [RunEvent]) {
        let name = state.steps[index].name
        state.steps[index].status = .succeeded
        state.steps[index].dueAt = nil
        state.steps[index].lastError = nil
        events.append(RunEvent(at: now, kind: .stepSucceeded, step: name, phase: .forward, message: "\(name) succeeded"))
        if index == saga.pivot, state.status == .running {
            events.append(
                RunEvent(
                    at: now, kind: .pivotPassed, step: name,
                    message: "\(name) is the pivot: from here the saga only goes forward; later failures are retried, then wait for a person"))
        }
        advanceForward(&state, at: now, events: &events)
    }

    private func fail(_ state: inout RunState, index: Int, reason: String, at now: Date, events: inout [RunEvent]) {
        state.steps[index].dueAt = nil
        state.steps[index].lastError = reason
        forwardFailedForGood(
            &state, index: index, failure: AttemptFailure(kind: .status, reason: reason, isRetryable: false, mayHaveApplied: false),
            attempt: state.steps[index].attempts, at: now, events: &events)
    }
}

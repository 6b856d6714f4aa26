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
        guard step.status == .running, step.dueAt != nil, saga.steps[index].action.waitsInsteadOfCalling,
            saga.steps[index].action.kind == wait.kind
        else {
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
        case .callback:
            message = "\(step.name) waits for its callback"
        case .child:
            let child = saga.steps[index].action.child
            message = "\(step.name) started child run \(wait.token ?? "?") of \(child?.name ?? "a saga")\(child?.version.map { " v\($0)" } ?? "") and waits for it to end"
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
        guard step.status == .running, step.dueAt != nil, saga.steps[index].action.waitsInsteadOfCalling else {
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
        case .callback:
            let heartbeatMissed = due < wait.until
            let reason = heartbeatMissed
                ? "no callback and no heartbeat within \(DurationText.format(saga.steps[index].action.callback?.heartbeat ?? .zero))"
                : "no callback within \(DurationText.format(Duration(secondsValue: wait.until.timeIntervalSince(wait.since))))"
            events.append(
                RunEvent(
                    at: now, kind: .callbackTimedOut, step: step.name, phase: .forward, attempt: step.attempts,
                    message: "\(step.name) timed out waiting for its callback: \(reason); the participant accepted the request, so it may have done the work",
                    data: ["heartbeatMissed": .bool(heartbeatMissed)]))
            state.steps[index].dueAt = nil
            state.steps[index].lastError = reason
            state.steps[index].outcomeUnknown = true
            forwardFailedForGood(
                &state, index: index, failure: AttemptFailure(kind: .timeout, reason: reason, isRetryable: false, mayHaveApplied: true),
                attempt: step.attempts, at: now, events: &events)
        case .child:
            // A child is looked at by the driver (`childChecked`); a due look that reaches here waits for the next.
            state.steps[index].dueAt = Self.nextLook(since: wait.since, at: now)
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

    /// Steps that wait stop waiting: the run turned back or was abandoned. An approval or a sleep did nothing outside
    /// Skald, so it ends failed (the run does not undo it), with `why` as its error. A callback step's participant
    /// accepted the work and may still complete it: its outcome is unknown, so it is undone like one that timed out.
    func stopWaiting(_ state: inout RunState, because why: String) {
        // A step waiting for its child run keeps waiting: the driver cancels the child, and the child's end says
        // whether anything stayed applied.
        for index in state.waitingSteps where state.steps[index].wait?.kind != .child {
            state.steps[index].dueAt = nil
            if state.steps[index].wait?.kind == .callback {
                state.steps[index].status = .outcomeUnknown
                state.steps[index].outcomeUnknown = true
                state.steps[index].lastError = "\(why) for its callback; the participant accepted the request, so it may do the work"
            } else {
                state.steps[index].status = .failed
                state.steps[index].lastError = why
            }
        }
    }

    // MARK: - Callbacks

    /// A callback step's request was accepted (a 2xx): the step waits for the callback, at most the callback's
    /// `timeout` (and, with a `heartbeat`, no longer than that between heartbeats). When the run is no longer going
    /// forward (it turned back, or was abandoned, while the request was in flight), the accepted work may still be
    /// done: the step's outcome is unknown, and it is undone in case it was.
    func acceptCallback(
        _ state: inout RunState, index: Int, callback: CallbackDefinition, status: Int, at now: Date, events: inout [RunEvent]
    ) {
        let name = state.steps[index].name
        guard state.status == .running else {
            state.steps[index].outcomeUnknown = true
            let reason = "HTTP \(status) accepted the request, but the run is no longer going forward; the participant may still do the work"
            state.steps[index].lastError = reason
            forwardFailedForGood(
                &state, index: index, failure: AttemptFailure(kind: .status, reason: reason, isRetryable: false, mayHaveApplied: true),
                attempt: state.steps[index].attempts, at: now, events: &events)
            return
        }
        var wait = state.steps[index].wait ?? StepWait(kind: .callback, since: now, until: now)
        wait.since = now
        wait.until = now.addingTimeInterval(callback.timeout.seconds)
        state.steps[index].wait = wait
        state.steps[index].status = .waiting
        state.steps[index].dueAt = callback.heartbeat.map { min(wait.until, now.addingTimeInterval($0.seconds)) } ?? wait.until
        events.append(
            RunEvent(
                at: now, kind: .callbackAccepted, step: name, phase: .forward, attempt: state.steps[index].attempts,
                message: "\(name) was accepted (HTTP \(status)): it waits for its callback for at most \(DurationText.format(callback.timeout))"
                    + (callback.heartbeat.map { ", with a heartbeat at least every \(DurationText.format($0))" } ?? ""),
                data: [
                    "status": .int(Int64(status)), "until": .string(wait.until.formatted(.iso8601)),
                    "heartbeatMs": callback.heartbeat.map(Self.millis) ?? .null,
                ]))
    }

    /// What a callback step's participant posted for `attempt`, received (and stored) at `receivedAt`. Nil when it
    /// changes nothing now: the attempt is not the step's current one, the step no longer waits for it, its request
    /// is still in flight (the callback came before the answer: it is applied once the answer comes), or a heartbeat
    /// is not newer than the last one.
    ///
    /// Besides a waiting step, a step whose attempt got no answer (it timed out, and a retry is due) takes its
    /// callback: the lost answer had accepted the request, and the callback says how it ended.
    public func callbackReceived(
        _ state: RunState, step index: Int, attempt: Int, signal: CallbackSignal, receivedAt: Date, at now: Date
    ) -> Transition? {
        guard index < saga.steps.count, index < state.steps.count, let callback = saga.steps[index].action.callback else { return nil }
        let step = state.steps[index]
        guard step.attempts == attempt, step.wait?.kind == .callback, step.wait?.attempt == attempt else { return nil }
        let waiting = step.status == .waiting
        let answerLost = step.status == .running && step.dueAt != nil
        guard waiting || answerLost else { return nil }
        let before = state
        var state = state
        var events: [RunEvent] = []
        let name = step.name
        switch signal {
        case .heartbeat:
            guard waiting, let every = callback.heartbeat, let wait = step.wait, receivedAt > (wait.heartbeatAt ?? wait.since) else { return nil }
            state.steps[index].wait?.heartbeatAt = receivedAt
            state.steps[index].dueAt = min(wait.until, receivedAt.addingTimeInterval(every.seconds))
            events.append(
                RunEvent(
                    at: now, kind: .callbackHeartbeat, step: name, phase: .forward, attempt: attempt,
                    message: "\(name)'s participant is still working (heartbeat); the next is due by \(state.steps[index].dueAt!.formatted(.iso8601))"))
        case .succeeded(let output):
            events.append(
                RunEvent(
                    at: now, kind: .callbackReceived, step: name, phase: .forward, attempt: attempt,
                    message: "\(name)'s callback came: succeeded", data: ["status": "succeeded"]))
            state.steps[index].wait?.output = output
            state.steps[index].outcomeUnknown = false
            if state.steps[index].response == nil { state.steps[index].response = StepResponse(status: 200, body: .null) }
            succeed(&state, index: index, at: now, events: &events)
            advanceCompensation(&state, at: now, events: &events)
        case .failed(let error):
            let reason = "its participant called back that it failed: \(error)"
            events.append(
                RunEvent(
                    at: now, kind: .callbackReceived, step: name, phase: .forward, attempt: attempt,
                    message: "\(name)'s callback came: failed (\(error))", data: ["status": "failed", "error": .string(error)]))
            state.steps[index].dueAt = nil
            state.steps[index].lastError = reason
            forwardFailedForGood(
                &state, index: index, failure: AttemptFailure(kind: .status, reason: reason, isRetryable: false, mayHaveApplied: false),
                attempt: attempt, at: now, events: &events)
        }
        return Transition(state: state, events: events, before: before)
    }

    /// The step's wait ended well: it succeeded (`how` says how, for its history), and the run goes on.
    func succeed(_ state: inout RunState, index: Int, at now: Date, events: inout [RunEvent], how: String? = nil, data: JSONValue = [:]) {
        let name = state.steps[index].name
        state.steps[index].status = .succeeded
        state.steps[index].dueAt = nil
        state.steps[index].lastError = nil
        events.append(RunEvent(at: now, kind: .stepSucceeded, step: name, phase: .forward, message: "\(name) succeeded" + (how.map { ": \($0)" } ?? ""), data: data))
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

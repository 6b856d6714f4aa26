import Foundation

/// The saga rules, as a pure function of (state, input, time): no I/O, no clock, no randomness of its own.
///
/// The state is also the schedule: a step whose `dueAt` is set is waiting for an attempt of its current
/// phase, and a step in `running`/`compensating` without `dueAt` has an attempt in flight. The caller
/// stores each transition (state and events) in one transaction before acting on it.
public struct SagaMachine: Sendable {
    public struct Transition: Sendable, Hashable {
        public var state: RunState
        public var events: [RunEvent]
    }

    public let saga: SagaDefinition
    /// For each step, the steps it waits for. Steps run in file order: each waits for the one before it.
    let dependencies: [[Int]]
    /// For each step, every step that waits for it, directly or not.
    let dependents: [Set<Int>]

    public init(saga: SagaDefinition) {
        self.saga = saga
        let dependencies = saga.steps.indices.map { $0 == 0 ? [] : [$0 - 1] }
        self.dependencies = dependencies
        var dependents = [Set<Int>](repeating: [], count: saga.steps.count)
        for index in saga.steps.indices.reversed() {
            for other in saga.steps.indices where dependencies[other].contains(index) {
                dependents[index].insert(other)
                dependents[index].formUnion(dependents[other])
            }
        }
        self.dependents = dependents
    }

    // MARK: - Inputs

    /// A new run: the first steps become due at once.
    public func start(runID: String, at now: Date) -> Transition {
        var state = RunState(id: runID, stepNames: saga.steps.map(\.name))
        var events = [
            RunEvent(
                at: now, kind: .runStarted,
                message: "run \(runID) of \(saga.name) v\(saga.version) started with \(saga.steps.count) steps")
        ]
        advanceForward(&state, at: now, events: &events)
        return Transition(state: state, events: events)
    }

    /// Records that an attempt of a due step is about to be sent. Store this before sending.
    public func beginAttempt(_ state: RunState, step index: Int, at now: Date) -> Transition {
        var state = state
        var step = state.steps[index]
        guard let phase = step.status.phase, step.dueAt != nil else {
            preconditionFailure("beginAttempt on step \(step.name) in status \(step.status) with no attempt due")
        }
        let attempt: Int
        if phase == .forward {
            step.attempts += 1
            attempt = step.attempts
        } else {
            step.compensationAttempts += 1
            attempt = step.compensationAttempts
        }
        step.dueAt = nil
        state.steps[index] = step
        let event = RunEvent(
            at: now, kind: .attemptStarted, step: step.name, phase: phase, attempt: attempt,
            message: "\(Self.label(step.name, phase)) attempt \(attempt) sent")
        return Transition(state: state, events: [event])
    }

    /// Recovery: an attempt was recorded as sent but its outcome never was (the process died).
    /// It is sent again as the same attempt, with the same idempotency key.
    public func resendInterruptedAttempt(_ state: RunState, step index: Int, at now: Date) -> Transition {
        let step = state.steps[index]
        guard let phase = step.status.phase, step.isInFlight else {
            preconditionFailure("resendInterruptedAttempt on step \(step.name) which has no attempt in flight")
        }
        let attempt = step.attempts(in: phase)
        let event = RunEvent(
            at: now, kind: .attemptResent, step: step.name, phase: phase, attempt: attempt,
            message: "\(Self.label(step.name, phase)) attempt \(attempt) had no recorded outcome after a restart; sending it again with the same idempotency key")
        return Transition(state: state, events: [event])
    }

    /// The outcome of the attempt in flight for `step`.
    ///
    /// - Parameter jitterSample: a number in `0...1` from the caller's random source, used for jitter.
    public func finishAttempt(
        _ state: RunState, step index: Int, outcome: AttemptOutcome, duration: Duration, at now: Date, jitterSample: Double
    ) -> Transition {
        var state = state
        var events: [RunEvent] = []
        let step = state.steps[index]
        guard let phase = step.status.phase, step.isInFlight else {
            preconditionFailure("finishAttempt on step \(step.name) which has no attempt in flight")
        }
        let attempt = step.attempts(in: phase)
        let label = Self.label(step.name, phase)
        let took = DurationText.format(duration)
        let call = phase == .forward ? saga.steps[index].request : saga.steps[index].compensation!

        switch outcome {
        case .succeeded(let response):
            events.append(
                RunEvent(
                    at: now, kind: .attemptSucceeded, step: step.name, phase: phase, attempt: attempt,
                    message: "\(label) attempt \(attempt) succeeded: HTTP \(response.status) in \(took)",
                    data: [
                        "status": .int(Int64(response.status)), "durationMs": Self.millis(duration),
                        "maxAttempts": .int(Int64(call.retry.maxAttempts)),
                    ]))
            state.steps[index].lastError = nil
            if phase == .forward {
                state.steps[index].status = .succeeded
                state.steps[index].response = response
                events.append(RunEvent(at: now, kind: .stepSucceeded, step: step.name, phase: .forward, message: "\(step.name) succeeded"))
                advanceForward(&state, at: now, events: &events)
                advanceCompensation(&state, at: now, events: &events)
            } else {
                state.steps[index].status = .compensated
                events.append(RunEvent(at: now, kind: .stepCompensated, step: step.name, phase: .compensate, message: "\(step.name) compensated"))
                advanceCompensation(&state, at: now, events: &events)
            }

        case .failed(let failure):
            state.steps[index].lastError = failure.reason
            var data: JSONValue = [
                "error": .string(failure.reason), "kind": .string(failure.kind.rawValue), "durationMs": Self.millis(duration),
                "retryable": .bool(failure.isRetryable), "maxAttempts": .int(Int64(call.retry.maxAttempts)),
            ]
            if let status = failure.response?.status { data = Self.merging(data, ["status": .int(Int64(status))]) }
            let mayRetry = phase == .compensate || state.status == .running
            // After an operator's retry, a compensation gets its retry policy afresh.
            let counted = phase == .compensate ? attempt - step.compensationAttemptsBase : attempt
            if failure.isRetryable, counted < call.retry.maxAttempts, mayRetry {
                let delay = call.retry.delay(afterAttempt: attempt, retryAfter: failure.retryAfter, jitterSample: jitterSample)
                state.steps[index].dueAt = now.addingTimeInterval(delay.seconds)
                events.append(
                    RunEvent(
                        at: now, kind: .attemptFailed, step: step.name, phase: phase, attempt: attempt,
                        message: "\(label) attempt \(attempt) of \(call.retry.maxAttempts) failed after \(took): \(failure.reason); next attempt in \(DurationText.format(delay))",
                        data: Self.merging(data, ["retryInMs": Self.millis(delay), "final": false])))
                break
            }
            let why: String
            if !failure.isRetryable {
                why = "not retryable"
            } else if !mayRetry {
                why = "no retry: the run is compensating"
            } else {
                why = "no attempts left (maxAttempts \(call.retry.maxAttempts))"
            }
            events.append(
                RunEvent(
                    at: now, kind: .attemptFailed, step: step.name, phase: phase, attempt: attempt,
                    message: "\(label) attempt \(attempt) of \(call.retry.maxAttempts) failed after \(took): \(failure.reason); \(why)",
                    data: Self.merging(data, ["final": true])))
            if phase == .forward {
                state.steps[index].status = .failed
                events.append(
                    RunEvent(
                        at: now, kind: .stepFailed, step: step.name, phase: .forward, attempt: attempt,
                        message: "\(step.name) failed: \(failure.reason)", data: ["error": .string(failure.reason)]))
                if state.status == .running {
                    beginCompensation(&state, failure: RunFailure(step: step.name, reason: failure.reason), at: now, events: &events)
                } else {
                    advanceCompensation(&state, at: now, events: &events)
                }
            } else {
                state.steps[index].status = .compensationFailed
                if state.compensationFailure == nil {
                    state.compensationFailure = RunFailure(step: step.name, reason: failure.reason)
                }
                events.append(
                    RunEvent(
                        at: now, kind: .compensationFailed, step: step.name, phase: .compensate, attempt: attempt,
                        message: "the compensation of \(step.name) failed: \(failure.reason); an operator must retry it or resolve it by hand",
                        data: ["error": .string(failure.reason)]))
                advanceCompensation(&state, at: now, events: &events)
            }
        }
        return Transition(state: state, events: events)
    }

    /// An operator's cancel: no new forward attempt starts and the completed steps are compensated.
    /// Attempts already in flight finish; if they succeed, they are compensated too.
    /// Returns nil when the run is not running (already compensating or finished).
    public func cancel(_ state: RunState, reason: String, at now: Date) -> Transition? {
        guard state.status == .running else { return nil }
        var state = state
        for index in state.steps.indices where state.steps[index].status == .running && state.steps[index].dueAt != nil {
            // Waiting for its first attempt or a retry: it will not be sent.
            state.steps[index].dueAt = nil
            state.steps[index].status = state.steps[index].attempts == 0 ? .pending : .failed
        }
        let why = reason.isEmpty ? "cancelled by an operator" : "cancelled by an operator: \(reason)"
        var events = [RunEvent(at: now, kind: .runCancelled, message: "run \(why)", data: ["reason": .string(reason)])]
        let inFlight = state.inFlightSteps.map { state.steps[$0].name }
        if !inFlight.isEmpty {
            events.append(
                RunEvent(
                    at: now, kind: .runCancelled,
                    message: "waiting for the attempt in flight of \(inFlight.joined(separator: ", ")); if it succeeds it is compensated too"))
        }
        beginCompensation(&state, failure: RunFailure(step: "", reason: why), at: now, events: &events)
        return Transition(state: state, events: events)
    }

    /// An operator's retry of a run in `compensation_failed`: the failed compensations run again, each with
    /// its retry policy afresh, then the compensation walk continues. Returns nil for any other status.
    public func retryCompensation(_ state: RunState, at now: Date) -> Transition? {
        guard state.status == .compensationFailed else { return nil }
        var state = state
        var retried: [String] = []
        for index in state.steps.indices where state.steps[index].status == .compensationFailed {
            state.steps[index].status = .compensating
            state.steps[index].dueAt = now
            state.steps[index].compensationAttemptsBase = state.steps[index].compensationAttempts
            retried.append(state.steps[index].name)
        }
        state.status = .compensating
        state.compensationFailure = nil
        let event = RunEvent(
            at: now, kind: .compensationRetried, message: "an operator retried the compensation of \(retried.joined(separator: ", "))",
            data: ["steps": .array(retried.map(JSONValue.string))])
        return Transition(state: state, events: [event])
    }

    // MARK: - Rules

    /// Makes every pending step whose dependencies succeeded due now; completes the run when all succeeded.
    private func advanceForward(_ state: inout RunState, at now: Date, events: inout [RunEvent]) {
        guard state.status == .running else { return }
        for index in state.steps.indices where state.steps[index].status == .pending {
            if dependencies[index].allSatisfy({ state.steps[$0].status == .succeeded }) {
                state.steps[index].status = .running
                state.steps[index].dueAt = now
            }
        }
        if state.steps.allSatisfy({ $0.status == .succeeded }) {
            state.status = .completed
            events.append(RunEvent(at: now, kind: .runCompleted, message: "run completed: all \(state.steps.count) steps succeeded"))
        }
    }

    private func beginCompensation(_ state: inout RunState, failure: RunFailure, at now: Date, events: inout [RunEvent]) {
        state.status = .compensating
        state.failure = failure
        let toUndo = state.steps.indices.filter { state.steps[$0].status == .succeeded }
        let withCompensation = toUndo.filter { saga.steps[$0].compensation != nil }
        let names = withCompensation.reversed().map { state.steps[$0].name }
        events.append(
            RunEvent(
                at: now, kind: .compensationStarted, step: failure.step.isEmpty ? nil : failure.step,
                message: names.isEmpty
                    ? "\(failure.step.isEmpty ? "the run was cancelled" : "\(failure.step) failed"), and no completed step has a compensation to run"
                    : "\(failure.step.isEmpty ? "the run was cancelled" : "\(failure.step) failed"), so the completed steps are compensated in reverse order: \(names.joined(separator: ", "))",
                data: ["order": .array(names.map(JSONValue.string)), "reason": .string(failure.reason)]))
        advanceCompensation(&state, at: now, events: &events)
    }

    /// Schedules every compensation whose dependents are settled, and ends the run once nothing is left to do.
    private func advanceCompensation(_ state: inout RunState, at now: Date, events: inout [RunEvent]) {
        guard state.status == .compensating else { return }
        let halted = state.steps.contains { $0.status == .compensationFailed }
        if !halted {
            for index in state.steps.indices.reversed() where state.steps[index].status == .succeeded {
                let blocked = dependents[index].contains { other in
                    switch state.steps[other].status {
                    case .succeeded, .running, .compensating: true
                    default: false
                    }
                }
                if blocked { continue }
                if saga.steps[index].compensation == nil {
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
        }
        let busy = state.steps.contains { $0.status == .running || $0.status == .compensating }
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
            let undone = state.steps.filter { $0.status == .compensated }.count
            events.append(
                RunEvent(
                    at: now, kind: .runCompensated,
                    message: "run compensated: \(state.failure.map { $0.step.isEmpty ? $0.reason : "\($0.step) failed" } ?? "a step failed") and \(undone) completed step\(undone == 1 ? " was" : "s were") undone"))
        }
    }

    // MARK: - Helpers

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

import Foundation

/// The saga rules, as a pure function of (state, input, time): no I/O, no clock, no randomness of its own.
///
/// The state is also the schedule: a step whose `dueAt` is set is waiting for an attempt of its current
/// phase, and a step in `running`/`compensating` without `dueAt` has an attempt in flight. The caller
/// stores each transition (state and events) in one transaction before acting on it.
public final class SagaMachine: Sendable {
    public struct Transition: Sendable, Hashable {
        public var state: RunState
        public var events: [RunEvent]
        /// The positions of the steps whose state changed, so a store writes only those; nil when any may have.
        public var changedSteps: [Int]?

        public init(state: RunState, events: [RunEvent], changedSteps: [Int]? = nil) {
            self.state = state
            self.events = events
            self.changedSteps = changedSteps
        }

        init(state: RunState, events: [RunEvent], before: RunState) {
            self.init(
                state: state, events: events,
                changedSteps: state.steps.indices.filter { state.steps[$0] != before.steps[$0] })
        }
    }

    public let saga: SagaDefinition
    /// What `checkStart` reads of the definition, worked out once.
    let inputReferences: [(reference: TemplateReference, usedAt: JSONPath)]
    let environmentNames: [String]
    /// For each step, the steps it waits for. Steps run in file order: each waits for the one before it.
    let dependencies: [[Int]]
    /// For each step, every step that waits for it, directly or not.
    let dependents: [Set<Int>]

    public init(saga: SagaDefinition) {
        self.saga = saga
        inputReferences = saga.inputReferences
        environmentNames = saga.environmentNames
        let dependencies = saga.dependencies
        self.dependencies = dependencies
        // The edges turned round (who waits for each step), then their closure: each step's set is built once.
        var waitingFor = [[Int]](repeating: [], count: saga.steps.count)
        for (step, waitsFor) in dependencies.enumerated() {
            for dependency in waitsFor { waitingFor[dependency].append(step) }
        }
        self.dependents = DefinitionParser.transitiveClosure(waitingFor)
    }

    /// `SagaDefinition.checkStart`, without working out again what the definition reads.
    public func checkStart(input: JSONValue, environment: [String: String]) throws(InputError) {
        try saga.checkStart(input: input, environment: environment, inputReferences: inputReferences, environmentNames: environmentNames)
    }

    // MARK: - Inputs

    /// A new run: the first steps become due at once.
    public func start(runID: String, at now: Date) -> Transition {
        var state = RunState(id: runID, stepNames: saga.steps.map(\.name))
        state.deadlineAt = saga.deadline.map { now.addingTimeInterval($0.seconds) }
        var events = [
            RunEvent(
                at: now, kind: .runStarted,
                message: "run \(runID) of \(saga.name) v\(saga.version) started with \(saga.steps.count) steps"
                    + (saga.deadline.map { "; deadline in \(DurationText.format($0))" } ?? ""))
        ]
        advanceForward(&state, at: now, events: &events)
        return Transition(state: state, events: events)
    }

    /// Records that an attempt of a due step is about to be sent. Store this before sending.
    public func beginAttempt(_ state: RunState, step index: Int, at now: Date) -> Transition {
        let before = state
        var state = state
        var step = state.steps[index]
        guard let phase = step.status.phase, step.dueAt != nil else {
            preconditionFailure("beginAttempt on step \(step.name) in status \(step.status) with no attempt due")
        }
        let attempt: Int
        if phase == .forward {
            if step.attempts == step.attemptsBase { step.firstAttemptAt = now }
            step.attempts += 1
            attempt = step.attempts
        } else {
            if step.compensationAttempts == step.compensationAttemptsBase { step.compensationFirstAttemptAt = now }
            step.compensationAttempts += 1
            attempt = step.compensationAttempts
        }
        step.dueAt = nil
        state.steps[index] = step
        let event = RunEvent(
            at: now, kind: .attemptStarted, step: step.name, phase: phase, attempt: attempt,
            message: "\(Self.label(step.name, phase)) attempt \(attempt) sent")
        return Transition(state: state, events: [event], before: before)
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
        return Transition(state: state, events: [event], changedSteps: [])
    }

    /// The outcome of the attempt in flight for `step`.
    ///
    /// - Parameter jitterSample: a number in `0...1` from the caller's random source, used for jitter.
    public func finishAttempt(
        _ state: RunState, step index: Int, outcome: AttemptOutcome, duration: Duration, at now: Date, jitterSample: Double
    ) -> Transition {
        let before = state
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
                if index == saga.pivot, state.status == .running {
                    events.append(
                        RunEvent(
                            at: now, kind: .pivotPassed, step: step.name,
                            message: "\(step.name) is the pivot: from here the saga only goes forward; later failures are retried, then wait for a person"))
                }
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
            // After an operator's retry or resume, the retry policy counts afresh.
            let counted = step.countedAttempts(in: phase)
            let delay = call.retry.delay(afterAttempt: counted, retryAfter: failure.retryAfter, jitterSample: jitterSample)
            let nextAt = now.addingTimeInterval(delay.seconds)
            let firstAt = (phase == .forward ? step.firstAttemptAt : step.compensationFirstAttemptAt) ?? now
            let withinElapsed = call.maxElapsed.map { nextAt <= firstAt.addingTimeInterval($0.seconds) } ?? true
            if failure.isRetryable, counted < call.retry.maxAttempts, mayRetry, withinElapsed {
                state.steps[index].dueAt = nextAt
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
            } else if counted >= call.retry.maxAttempts {
                why = "no attempts left (maxAttempts \(call.retry.maxAttempts))"
            } else {
                why = "no retry: maxElapsed \(DurationText.format(call.maxElapsed ?? .zero)) would pass before it"
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
                if state.status == .running && isPastPivot(state) {
                    // Past the point of no return: no compensation; the run waits for a person once nothing else can move.
                    if state.stuck == nil { state.stuck = RunFailure(step: step.name, reason: failure.reason) }
                    advanceForward(&state, at: now, events: &events)
                } else if state.status == .running {
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
        return Transition(state: state, events: events, before: before)
    }

    /// An operator's cancel: no new forward attempt starts and the completed steps are compensated.
    /// Attempts already in flight finish; if they succeed, they are compensated too.
    /// Returns nil when the run is not running (already compensating or finished).
    /// Nil when the run is not running, or when its pivot has succeeded or is in flight: past the point of no
    /// return a run can only go forward (a pivot that succeeds after a cancel would have nothing before it left).
    public func cancel(_ state: RunState, reason: String, at now: Date) -> Transition? {
        guard state.status == .running, !isAtOrPastPivot(state) else { return nil }
        let before = state
        var state = state
        stopForwardWork(&state)
        let why = reason.isEmpty ? "cancelled by an operator" : "cancelled by an operator: \(reason)"
        var events = [RunEvent(at: now, kind: .runCancelled, message: "run \(why)", data: ["reason": .string(reason)])]
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
    /// Returns nil when there is nothing to do (no deadline yet, not running, or past the pivot).
    public func deadlinePassed(_ state: RunState, at now: Date) -> Transition? {
        guard state.status == .running, let deadlineAt = state.deadlineAt, now >= deadlineAt, !isPastPivot(state),
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
        let targets = state.steps.indices.filter { state.steps[$0].status == .compensationFailed && (name == nil || state.steps[$0].name == name) }
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
        let event = RunEvent(
            at: now, kind: .compensationRetried,
            message: "\(Self.who(who)) retried the compensation of \(retried.joined(separator: ", "))\(note.isEmpty ? "" : ": \(note)")",
            data: ["steps": .array(retried.map(JSONValue.string)), "by": .string(who), "note": .string(note)])
        return Transition(state: state, events: [event], before: before)
    }

    /// An operator says a failed compensation was done by hand; the compensation walk continues from there.
    public func resolveCompensation(_ state: RunState, step name: String, note: String, by who: String = "", at now: Date) -> Transition? {
        guard state.status == .compensationFailed,
            let index = state.steps.firstIndex(where: { $0.name == name && $0.status == .compensationFailed })
        else { return nil }
        let before = state
        var state = state
        state.steps[index].status = .compensated
        state.steps[index].lastError = nil
        var events = [
            RunEvent(
                at: now, kind: .compensationResolved, step: name, phase: .compensate,
                message: "\(Self.who(who)) resolved the compensation of \(name) by hand: \(note)",
                data: ["note": .string(note), "by": .string(who)])
        ]
        let stillFailed = state.steps.indices.filter { state.steps[$0].status == .compensationFailed }
        state.compensationFailure = stillFailed.first.map { RunFailure(step: state.steps[$0].name, reason: state.steps[$0].lastError ?? "") }
        state.status = .compensating
        advanceCompensation(&state, at: now, events: &events)
        return Transition(state: state, events: events, before: before)
    }

    /// An operator resumes a stuck run: the failed steps past the pivot are tried again with their retry policy afresh.
    public func resume(_ state: RunState, by who: String = "", note: String = "", at now: Date) -> Transition? {
        guard state.status == .stuck else { return nil }
        let before = state
        var state = state
        var resumed: [String] = []
        for index in state.steps.indices where state.steps[index].status == .failed {
            state.steps[index].status = .running
            state.steps[index].dueAt = now
            state.steps[index].attemptsBase = state.steps[index].attempts
            state.steps[index].firstAttemptAt = nil
            resumed.append(state.steps[index].name)
        }
        state.status = .running
        state.stuck = nil
        let event = RunEvent(
            at: now, kind: .runResumed,
            message: "\(Self.who(who)) resumed the run: \(resumed.joined(separator: ", ")) will be tried again" + (note.isEmpty ? "" : " (\(note))"),
            data: ["steps": .array(resumed.map(JSONValue.string)), "by": .string(who), "note": .string(note)])
        return Transition(state: state, events: [event], before: before)
    }

    /// Whether the pivot has succeeded, so the run can no longer compensate.
    public func isPastPivot(_ state: RunState) -> Bool {
        guard let pivot = saga.pivot else { return false }
        return state.steps[pivot].status == .succeeded
    }

    /// Past the pivot, or with the pivot's attempt in flight (it may succeed at any moment).
    public func isAtOrPastPivot(_ state: RunState) -> Bool {
        guard let pivot = saga.pivot else { return false }
        return state.steps[pivot].status == .succeeded || state.steps[pivot].isInFlight
    }

    static func who(_ name: String) -> String { name.isEmpty ? "an operator" : name }

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
        } else if let stuck = state.stuck, !state.steps.contains(where: { $0.status == .running }) {
            state.status = .stuck
            events.append(
                RunEvent(
                    at: now, kind: .runStuck, step: stuck.step,
                    message: "run stuck: \(stuck.summary) after the pivot; the saga cannot turn back, so fix what \(stuck.step ?? "it") calls and resume the run",
                    data: ["reason": .string(stuck.reason)]))
        }
    }

    /// Steps waiting for their first attempt or a retry will not be sent any more: the saga turned back.
    /// Attempts already in flight are left to finish.
    private func stopForwardWork(_ state: inout RunState) {
        for index in state.steps.indices where state.steps[index].status == .running && state.steps[index].dueAt != nil {
            state.steps[index].dueAt = nil
            state.steps[index].status = state.steps[index].attempts == 0 ? .pending : .failed
        }
    }

    private func beginCompensation(_ state: inout RunState, failure: RunFailure, at now: Date, events: inout [RunEvent]) {
        stopForwardWork(&state)
        state.status = .compensating
        state.failure = failure
        let toUndo = state.steps.indices.filter { state.steps[$0].status == .succeeded }
        let withCompensation = toUndo.filter { saga.steps[$0].compensation != nil }
        let names = withCompensation.reversed().map { state.steps[$0].name }
        events.append(
            RunEvent(
                at: now, kind: .compensationStarted, step: failure.step,
                message: names.isEmpty
                    ? "\(failure.step.map { "\($0) failed" } ?? failure.reason), and no completed step has a compensation to run"
                    : "\(failure.step.map { "\($0) failed" } ?? failure.reason), so the completed steps are undone, each after the steps that depended on it: \(names.joined(separator: ", "))",
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
                    message: "run compensated: \(state.failure?.summary ?? "a step failed"); \(undone) completed step\(undone == 1 ? " was" : "s were") undone"))
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

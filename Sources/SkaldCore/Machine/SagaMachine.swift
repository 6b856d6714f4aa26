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
                changedSteps: state.steps.indices.filter { $0 >= before.steps.count || state.steps[$0] != before.steps[$0] })
        }
    }

    public let saga: SagaDefinition
    /// What `checkStart` reads of the definition, worked out once.
    let inputReferences: [(reference: TemplateReference, usedAt: JSONPath)]
    public let environmentNames: [String]
    /// For each step, the steps it waits for. Steps run in file order: each waits for the one before it.
    let dependencies: [[Int]]
    /// For each step, every step that waits for it, directly or not.
    let dependents: [Set<Int>]
    /// Each step's position, by name.
    let stepPositions: [String: Int]
    /// The steps that declare `forEach`.
    let forEachSteps: [Int]
    /// The steps whose calls or answer tests read a forEach step's answers (`{{steps.NAME.responses…}}`): only their
    /// calls need the list of every item's answer worked out.
    public let stepsReadingItemAnswers: Set<Int>

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
        stepPositions = Dictionary(saga.steps.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        forEachSteps = saga.steps.indices.filter { saga.steps[$0].forEach != nil }
        stepsReadingItemAnswers = Set(
            saga.steps.indices.filter { index in
                let step = saga.steps[index]
                let references = (step.request?.references ?? []) + (step.compensation?.references ?? [])
                    + (step.failWhen?.references ?? []) + (step.retryWhen?.references ?? [])
                return references.contains { if case .stepResponses = $0 { true } else { false } }
            })
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
    ///
    /// - Parameters:
    ///   - resumingFrom: the participant whose open circuit the step waited on, now letting calls through.
    ///   - probe: the attempt is one of the half-open circuit's trial calls.
    /// - Parameter callbackToken: for a callback step's forward attempt, the new token its callback URL carries (from
    ///   the caller's random source): stored with the attempt, before the request leaves.
    public func beginAttempt(
        _ state: RunState, step index: Int, at now: Date, resumingFrom participant: String? = nil, probe: Bool = false,
        callbackToken: String? = nil
    ) -> Transition {
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
            if definition(of: index, in: state).action.callback != nil {
                guard let callbackToken else { preconditionFailure("beginAttempt on callback step \(step.name) without a token") }
                step.wait = StepWait(kind: .callback, since: now, until: now, token: callbackToken, attempt: attempt)
            }
        } else {
            if step.compensationAttempts == step.compensationAttemptsBase { step.compensationFirstAttemptAt = now }
            step.compensationAttempts += 1
            attempt = step.compensationAttempts
        }
        step.dueAt = nil
        state.steps[index] = step
        var events: [RunEvent] = []
        if let participant {
            events.append(
                RunEvent(
                    at: now, kind: .participantResumed, step: step.name, phase: phase,
                    message: "\(Self.label(step.name, phase)) resumes: "
                        + (probe ? "\(participant) is half-open and lets this attempt through as a probe" : "\(participant)'s circuit is closed again"),
                    data: ["participant": .string(participant), "probe": .bool(probe)]))
        }
        events.append(
            RunEvent(
                at: now, kind: .attemptStarted, step: step.name, phase: phase, attempt: attempt,
                message: "\(Self.label(step.name, phase)) attempt \(attempt) sent"))
        return Transition(state: state, events: events, before: before)
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
            message: "\(Self.label(step.name, phase)) attempt \(attempt) had no recorded outcome when this run was taken up again (after a restart or a take-over); sending it again with the same idempotency key")
        return Transition(state: state, events: [event], changedSteps: [])
    }

    /// The participant that `step` calls has an open circuit: its due attempt is not sent and does not count against
    /// `maxAttempts`; the step waits until `until` (when the circuit lets a probe through). A forward step whose
    /// `maxElapsed` would pass before then fails for good, as a retry would; a compensation keeps waiting. The saga's
    /// deadline is left to `deadlinePassed`, as for any step waiting for its next attempt.
    public func waitForParticipant(_ state: RunState, step index: Int, participant: String, until: Date, at now: Date) -> Transition {
        let before = state
        var state = state
        let step = state.steps[index]
        guard let phase = step.status.phase, step.dueAt != nil else {
            preconditionFailure("waitForParticipant on step \(step.name) in status \(step.status) with no attempt due")
        }
        let label = Self.label(step.name, phase)
        let wait = DurationText.format(Duration(secondsValue: max(0, until.timeIntervalSince(now))))
        let data: JSONValue = [
            "participant": .string(participant), "until": .string(until.formatted(.iso8601)), "waitMs": .int(Int64(max(0, until.timeIntervalSince(now)) * 1000)),
        ]
        guard let call = definition(of: index, in: state).call(phase) else {
            preconditionFailure("waitForParticipant on step \(step.name), which makes no \(phase.rawValue) call")
        }
        if phase == .forward, let maxElapsed = call.maxElapsed, let firstAt = step.firstAttemptAt,
            until > firstAt.addingTimeInterval(maxElapsed.seconds)
        {
            let reason = "\(participant) circuit open; maxElapsed \(DurationText.format(maxElapsed)) would pass before its next probe"
            var events = [
                RunEvent(
                    at: now, kind: .participantWaiting, step: step.name, phase: phase,
                    message: "\(label) is not sent: \(reason)", data: Self.merging(data, ["final": true]))
            ]
            state.steps[index].dueAt = nil
            state.steps[index].lastError = reason
            forwardFailedForGood(
                &state, index: index, failure: AttemptFailure(kind: .transport, reason: reason, isRetryable: true, mayHaveApplied: false),
                attempt: step.attempts, at: now, events: &events)
            return Transition(state: state, events: events, before: before)
        }
        state.steps[index].dueAt = max(until, step.dueAt!)
        let event = RunEvent(
            at: now, kind: .participantWaiting, step: step.name, phase: phase,
            message: "\(label) waits: \(participant) circuit open, next probe in \(wait); the attempt is not sent and not counted",
            data: Self.merging(data, ["final": false]))
        return Transition(state: state, events: [event], before: before)
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
        let stepDefinition = definition(of: index, in: state)
        guard let call = stepDefinition.call(phase) else {
            preconditionFailure("finishAttempt on step \(step.name), which makes no \(phase.rawValue) call")
        }

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
            if phase == .forward, let callback = stepDefinition.action.callback {
                // Accepted, not done: the step waits for the participant's callback.
                state.steps[index].response = response
                acceptCallback(&state, index: index, callback: callback, status: response.status, at: now, events: &events)
            } else if phase == .forward {
                state.steps[index].status = .succeeded
                state.steps[index].outcomeUnknown = false
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
            if phase == .forward && failure.mayHaveApplied { state.steps[index].outcomeUnknown = true }
            var data: JSONValue = [
                "error": .string(failure.reason), "kind": .string(failure.kind.rawValue), "durationMs": Self.millis(duration),
                "retryable": .bool(failure.isRetryable), "maxAttempts": .int(Int64(call.retry.maxAttempts)),
            ]
            if let status = failure.response?.status { data = Self.merging(data, ["status": .int(Int64(status))]) }
            // An abandoned run records the outcomes of its last attempts but schedules nothing.
            let mayRetry = state.status != .abandoned && (phase == .compensate || state.status == .running)
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
            } else if state.status == .abandoned {
                why = "no retry: the run was abandoned"
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
                forwardFailedForGood(&state, index: index, failure: failure, attempt: attempt, at: now, events: &events)
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

    /// Whether the pivot has succeeded, so the run can no longer compensate.
    public func isPastPivot(_ state: RunState) -> Bool {
        guard let pivot = saga.pivot else { return false }
        return state.steps[pivot].status.isDone
    }

    /// Past the pivot, or with the pivot's attempt in flight (it may succeed at any moment), or with an attempt of
    /// the pivot that may have been applied (it timed out).
    public func isAtOrPastPivot(_ state: RunState) -> Bool {
        guard let pivot = saga.pivot else { return false }
        let step = state.steps[pivot]
        // A pivot waiting for its callback was accepted: it may complete at any moment, like one in flight.
        let accepted = step.status == .waiting && step.wait?.kind == .callback
        return step.status.isDone || step.isInFlight || accepted || (step.outcomeUnknown && saga.steps[pivot].compensateUnknown)
    }

    /// Stuck because the pivot failed with its outcome unknown: a person decides whether it was applied.
    public func isStuckAtUndecidedPivot(_ state: RunState) -> Bool {
        guard state.status == .stuck, let pivot = saga.pivot else { return false }
        return state.steps[pivot].status == .outcomeUnknown
    }

    // MARK: - Rules

    /// The forward call of `index` failed for good (`failure` says how): the step ends failed or with its outcome
    /// unknown, and the run compensates, waits at the pivot, or goes on past it.
    func forwardFailedForGood(
        _ state: inout RunState, index: Int, failure: AttemptFailure, attempt: Int, at now: Date, events: inout [RunEvent]
    ) {
        let step = state.steps[index]
        let stepDefinition = definition(of: index, in: state)
            let unknown = state.steps[index].outcomeUnknown
            state.steps[index].status = unknown ? .outcomeUnknown : .failed
            let pastPivot = state.status == .running && isPastPivot(state)
            let undecidedPivot = unknown && index == saga.pivot && stepDefinition.compensateUnknown && state.status == .running
            var message = "\(step.name) failed: \(failure.reason)"
            if unknown {
                message += "; its outcome is unknown (\(Self.unknownBecause(failure))): it may have been applied"
                if pastPivot {
                    message += ", and past the pivot nothing is undone"
                } else if undecidedPivot {
                    message += ". It is the pivot, so the run can neither turn back nor go on: it waits for a person"
                } else if !stepDefinition.compensateUnknown {
                    message += ", but compensateUnknown is false, so it is not undone: check it at the participant"
                } else if stepDefinition.compensation == nil {
                    message += ", and it declares no compensation, so it is not undone: check it at the participant"
                } else {
                    message += ", so it is undone in case it was"
                }
            }
            events.append(
                RunEvent(
                    at: now, kind: .stepFailed, step: step.name, phase: .forward, attempt: attempt,
                    message: message,
                    data: ["error": .string(failure.reason), "outcome": .string(unknown ? "unknown" : "refused")]))
            if pastPivot {
                // Past the point of no return: no compensation; the run waits for a person once nothing else can move.
                if state.stuck == nil { state.stuck = RunFailure(step: step.name, reason: failure.reason) }
                advanceForward(&state, at: now, events: &events)
            } else if undecidedPivot {
                // The point of no return may have been passed: neither compensating nor going on is safe.
                state.stuck = RunFailure(step: step.name, reason: RunFailure.outcomeUnknownPrefix + failure.reason)
                advanceForward(&state, at: now, events: &events)
            } else if state.status == .running {
                beginCompensation(&state, failure: RunFailure(step: step.name, reason: failure.reason), at: now, events: &events)
            } else {
                advanceCompensation(&state, at: now, events: &events)
            }
    }

    /// Makes every pending step whose dependencies succeeded due now; completes the run when all succeeded.
    func advanceForward(_ state: inout RunState, at now: Date, events: inout [RunEvent]) {
        guard state.status == .running else { return }
        refreshItems(&state, at: now, events: &events)
        for index in saga.steps.indices where state.steps[index].status == .pending {
            if dependencies[index].allSatisfy({ state.steps[$0].status.letsDependentsStart }) {
                state.steps[index].status = .running
                state.steps[index].dueAt = now
            }
        }
        let sagaSteps = state.steps.prefix(saga.steps.count)
        if sagaSteps.allSatisfy({ $0.status.letsDependentsStart }) {
            state.status = .completed
            let byHand = state.steps.filter { $0.status == .resolved }.map(\.name)
            let skipped = sagaSteps.filter { $0.status == .skipped }.map(\.name)
            let ran = sagaSteps.count - skipped.count
            var message = byHand.isEmpty
                ? (skipped.isEmpty ? "run completed: all \(ran) steps succeeded" : "run completed: \(ran) step\(ran == 1 ? "" : "s") succeeded")
                : "run completed: \(skipped.isEmpty ? "all " : "")\(ran) step\(ran == 1 ? "" : "s") done, \(byHand.joined(separator: ", ")) by hand"
            if !skipped.isEmpty { message += "; skipped by their condition: \(skipped.joined(separator: ", "))" }
            events.append(RunEvent(at: now, kind: .runCompleted, message: message))
        } else if let stuck = state.stuck, !state.steps.contains(where: { $0.status == .running || $0.status == .waiting }) {
            state.status = .stuck
            let message = isStuckAtUndecidedPivot(state)
                ? "run stuck: the outcome of the pivot \(stuck.step ?? "") is unknown, so the saga can neither turn back nor go on; find out at the participant whether it was applied, then retry the run (skald retry \(state.id): it is sent again with the same idempotency key), record that it was applied (skald resolve \(state.id) --step \(stuck.step ?? "") --note …, with --response when later steps read its response: the run goes on) or cancel it (skald cancel \(state.id): the steps before the pivot are compensated)"
                : "run stuck: \(stuck.summary) after the pivot; the saga cannot turn back, so fix what \(stuck.step ?? "it") calls and retry the run (skald retry \(state.id)), record that its work was done by hand (skald resolve \(state.id) --step \(stuck.step ?? "STEP") --note …: the run goes on), or abandon it once settled by hand (skald abandon \(state.id) --note …)"
            events.append(RunEvent(at: now, kind: .runStuck, step: stuck.step, message: message, data: ["reason": .string(stuck.reason)]))
        }
    }
}

import Foundation
import Logging
import SkaldCore

/// Drives one run: sends every due attempt, waits for outcomes, timers and operator commands, and stores
/// each transition before acting on it. Attempts of different steps may be in flight at once.
struct RunDriver {
    let engine: Engine
    let machine: SagaMachine
    let runID: String
    let input: JSONValue
    var state: RunState
    let startedAt: Date
    let trace: RunTrace?
    let mailbox: Mailbox<DriverCommand>
    /// The participant permit each step's attempt holds, from admission until its outcome.
    private var permits: [Int: (gate: ParticipantGate, permit: GatePermit, phase: Phase)] = [:]
    /// Steps asking their participant's gate to go, with the ticket that withdraws the request and the phase the
    /// attempt is for (a step turned to compensating meanwhile asks its compensation's gate afresh).
    private var admitting: [Int: (gate: ParticipantGate, ticket: Int, resend: Bool, phase: Phase)] = [:]
    /// Steps that waited on an open circuit, with the participant's name and the phase: their next attempt of that
    /// phase says they resume.
    private var waitedOn: [Int: (participant: String, phase: Phase)] = [:]
    /// Whether any participant may apply to this saga's calls (false: no gate is ever asked).
    private let guarded: Bool
    /// The child runs this driver asked to cancel (its run turned back while they went on), so it asks once.
    var cancelledChildren: Set<String> = []

    init(
        engine: Engine, machine: SagaMachine, runID: String, input: JSONValue, state: RunState, startedAt: Date, trace: RunTrace?,
        mailbox: Mailbox<DriverCommand>
    ) {
        self.trace = trace
        self.startedAt = startedAt
        self.engine = engine
        self.machine = machine
        self.runID = runID
        self.input = input
        self.state = state
        self.mailbox = mailbox
        self.guarded = engine.participants.applies(to: machine.saga)
    }

    private enum Wake: Sendable {
        /// A slot to send an attempt of `step` (nil: the wait was cancelled).
        case slot(step: Int, granted: Bool, resend: Bool)
        /// The participant's answer to a step that asked to go.
        case admitted(step: Int, Admission, resend: Bool)
        case finished(AttemptKey, AttemptOutcome, Duration)
        /// The attempt's task was cancelled (shutdown, or the driver gave up after a failed store): it has no
        /// outcome, nothing is stored for it, and the next driver sends it again with the same key.
        case abandoned(AttemptKey)
        case timer(Date)
        case command(DriverCommand?)
    }

    /// Drives the run until it is terminal, has nothing due, or is drained.
    ///
    /// When storing a transition fails, nothing more is sent or stored: the attempts in flight are cancelled,
    /// every slot is given back, and `RunStoreFailure` is thrown, so the engine drives the run again from what
    /// the store holds once it can be written (exactly as after a crash).
    mutating func run() async throws -> RunState {
        try await withThrowingTaskGroup(of: Wake.self) { group in
            var inFlight = 0
            /// Steps waiting for a slot, so they are not asked for twice.
            var reserving: Set<Int> = []
            /// Wake-ups already asked of the clock; a new one is needed only when nothing pending comes first.
            var timers: [Date] = []
            var listening = false
            var draining = false
            /// The first store failure; once set, the driver only collects its child tasks and gives back slots.
            var failure: (any Error)?

            let engine = self.engine
            let runID = self.runID
            /// Runs a store write; on failure, records it so the loop stops everything this driver started.
            /// A write that moves the run on (anything but re-sending an interrupted attempt) shows the store works.
            func storing(_ movesOn: Bool, _ write: () async throws -> Void) async -> Bool {
                guard failure == nil else { return false }
                do {
                    try await write()
                    if movesOn { engine.storeSucceeded(runID: runID) }
                    return true
                } catch {
                    failure = error
                    draining = true
                    return false
                }
            }
            var cancelledAfterFailure = false

            // Callbacks stored while no driver held the run (or before this one took it): applied first.
            if machine.saga.steps.contains(where: { $0.action.callback != nil }) { await applyStoredCallbacks(storing: storing) }

            // Attempts that were sent before a restart and have no outcome: send them again, same key.
            for index in state.inFlightSteps {
                reserving.insert(index)
                if !admit(index, resend: true, in: &group) { requestSlot(index, resend: true, in: &group) }
            }

            loop: while true {
                // A cancelled task drains: it sends nothing new, and stores what is in flight.
                if Task.isCancelled { draining = true }
                if failure != nil && !cancelledAfterFailure {
                    // Nothing more can be stored: stop the attempts in flight (they are sent again, same key).
                    cancelledAfterFailure = true
                    group.cancelAll()
                }
                if !draining {
                    let now = engine.clock.now()
                    if let transition = machine.deadlinePassed(state, at: now),
                        await storing(true, { try await engine.store.recordTransition(runID: runID, at: now, transition: transition) })
                    {
                        commit(transition)
                    }
                }
                if !draining {
                    let now = engine.clock.now()
                    for index in state.dueSteps(at: now) where !reserving.contains(index) {
                        guard !draining else { break }
                        // An earlier step's move this pass (a wait that ended) may have turned the run back.
                        guard state.steps[index].dueAt.map({ $0 <= now }) == true else { continue }
                        // A step with `when` is tested before it starts; false skips it (stored before the run goes on).
                        if machine.decidesBeforeStarting(state, step: index), machine.saga.steps[index].when?.holds(in: context()) == false {
                            let transition = machine.skip(state, step: index, at: now)
                            if await storing(true, { try await engine.store.recordTransition(runID: runID, at: now, transition: transition) }) {
                                commit(transition)
                            }
                            continue
                        }
                        // A forEach step works out its items (stored before any item's call is sent); it sends nothing itself.
                        if machine.fansOut(state, step: index) {
                            let transition = machine.fanOut(state, step: index, items: items(of: index), at: now)
                            if await storing(true, { try await engine.store.recordTransition(runID: runID, at: now, transition: transition) }) {
                                commit(transition)
                            }
                            continue
                        }
                        // A step that runs a child saga starts it, looks at it, or reverts it; nothing is sent.
                        if index < machine.saga.steps.count, machine.saga.steps[index].action.child != nil {
                            await moveChild(index, storing: storing)
                            continue
                        }
                        // A step that waits instead of calling begins or ends its wait, and a wait for a callback
                        // ends; nothing is sent.
                        if state.steps[index].status == .waiting
                            || (machine.definition(of: index, in: state).action.waitsInsteadOfCalling && state.steps[index].status == .running)
                        {
                            await moveWait(index, storing: storing)
                            continue
                        }
                        // The participant's gate first, so one held back takes none of the engine's slots.
                        if admit(index, resend: false, in: &group) {
                            reserving.insert(index)
                            continue
                        }
                        // A free slot is taken at once; otherwise a child task waits for one.
                        if engine.limiter.tryAcquire() {
                            if await send(index, resend: false, in: &group, storing: storing) { inFlight += 1 }
                        } else {
                            reserving.insert(index)
                            requestSlot(index, resend: false, in: &group)
                        }
                    }
                }
                if inFlight == 0 && reserving.isEmpty && (draining || state.status.isTerminal || state.nextDueAt == nil) { break }
                // Nothing under way and the next move far off: the run waits as a row, not a task. (A step held back by
                // an open circuit stays here, where the participant's state and the wait shown for it live.)
                if inFlight == 0, reserving.isEmpty, admitting.isEmpty, waitedOn.isEmpty, !draining, engine.isServing.load(ordering: .acquiring),
                    let next = machine.nextWakeAt(state), next.timeIntervalSince(engine.clock.now()) > engine.configuration.parking.after.seconds
                {
                    var parked = false
                    let store = engine.store
                    guard await storing(false, { parked = try await store.park(runID: runID, until: next) }) else { continue }
                    if parked { break }
                    // A callback was stored meanwhile and waits to be applied: apply it rather than park.
                    await applyStoredCallbacks(storing: storing)
                    continue
                }
                if !draining, let next = machine.nextWakeAt(state, excluding: reserving), !timers.contains(where: { $0 <= next }) {
                    timers.append(next)
                    let clock = engine.clock
                    group.addTask {
                        try await clock.sleep(until: next)
                        return .timer(next)
                    }
                }
                if !listening && !draining {
                    listening = true
                    let mailbox = self.mailbox
                    group.addTask { .command(await mailbox.next()) }
                }

                if inFlight == 0 && reserving.isEmpty && failure == nil {
                    // Waiting with nothing in flight and nothing unstored: this run is not held up by the store.
                    engine.storeSucceeded(runID: runID)
                }
                // After this pass's transitions: steps waiting at a gate that are no longer wanted leave its line.
                withdrawUnwanted(draining: draining)
                let wake: Wake?
                do {
                    wake = try await group.next()
                } catch is CancellationError {
                    continue  // a timer cancelled while draining
                }
                switch wake {
                case .slot(let index, let granted, let resend)?:
                    reserving.remove(index)
                    guard granted else {
                        releasePermit(index)
                        continue
                    }
                    guard !draining else {
                        engine.limiter.release()
                        releasePermit(index)
                        continue
                    }
                    if await send(index, resend: resend, in: &group, storing: storing) { inFlight += 1 }

                case .admitted(let index, let admission, let resend)?:
                    // Set by `admit` before the task that answers, and removed only here.
                    let asked = admitting.removeValue(forKey: index)!
                    switch admission {
                    case .granted(let permit):
                        permits[index] = (asked.gate, permit, asked.phase)
                        engine.noteParticipantWait(runID: runID, step: state.steps[index].name, nil)
                        if draining || state.steps[index].status.phase != asked.phase {
                            reserving.remove(index)
                            releasePermit(index)
                        } else if engine.limiter.tryAcquire() {
                            reserving.remove(index)
                            if await send(index, resend: resend, in: &group, storing: storing) { inFlight += 1 }
                        } else {
                            requestSlot(index, resend: resend, in: &group)
                        }
                    case .open(let until):
                        reserving.remove(index)
                        let now = engine.clock.now()
                        let name = asked.gate.id.name
                        let step = state.steps[index]
                        guard !draining, !resend, step.dueAt.map({ $0 <= now }) == true, step.status.phase == asked.phase else {
                            engine.noteParticipantWait(runID: runID, step: step.name, nil)
                            continue
                        }
                        let transition = machine.waitForParticipant(state, step: index, participant: name, until: until, at: now)
                        if await storing(true, { try await engine.store.recordTransition(runID: runID, at: now, transition: transition) }) {
                            commit(transition)
                            waitedOn[index] = (name, asked.phase)
                            let waiting = transition.state.steps[index].dueAt != nil
                            engine.noteParticipantWait(
                                runID: runID, step: step.name, waiting ? ParticipantWait(participant: name, reason: .circuitOpen, until: until) : nil)
                        }
                    case .withdrawn:
                        reserving.remove(index)
                        engine.noteParticipantWait(runID: runID, step: state.steps[index].name, nil)
                    }

                case .finished(let key, let outcome, let duration)?:
                    inFlight -= 1
                    engine.limiter.release()
                    if let held = permits.removeValue(forKey: key.step) { held.gate.finish(held.permit, outcome: outcome, duration: duration) }
                    let finishedAt = engine.clock.now()
                    // A 2xx answer as the step's failWhen and retryWhen judge it (the participant's breaker saw it as it came).
                    let outcome = machine.judge(outcome, state, step: key.step, phase: key.phase, context: context(at: key.step))
                    let transition = machine.finishAttempt(
                        state, step: key.step, outcome: outcome, duration: duration, at: finishedAt,
                        jitterSample: engine.configuration.jitterSample())
                    let stored = await storing(true) {
                        try await engine.store.recordAttemptFinished(
                            AttemptResult(attempt: key, outcome: outcome, duration: duration, finishedAt: finishedAt),
                            transition: transition)
                    }
                    if stored {
                        commit(transition)
                        // Accepted: a callback that came before the answer is stored already, and applies now.
                        if state.steps[key.step].status == .waiting, state.steps[key.step].wait?.kind == .callback {
                            await applyStoredCallbacks(storing: storing)
                        }
                    }

                case .abandoned(let key)?:
                    inFlight -= 1
                    engine.limiter.release()
                    releasePermit(key.step)
                    engine.abandonedAttempts.add(1, ordering: .relaxed)

                case .timer(let date)?:
                    if let index = timers.firstIndex(of: date) { timers.remove(at: index) }

                case .command(let command)?:
                    listening = false
                    switch command {
                    case .operate(let operation, let reply, let callbacksFirst)?:
                        // A callback stored and not yet handed over is applied first: the action sees what came before it.
                        if failure == nil, callbacksFirst, state.waitsForCallback { await applyStoredCallbacks(storing: storing) }
                        guard failure == nil else {
                            // Answered by the next driver, once the store can be written again.
                            mailbox.sendFirst(.operate(operation, reply, callbacksFirst: callbacksFirst))
                            continue
                        }
                        let now = engine.clock.now()
                        let transition: SagaMachine.Transition
                        do {
                            transition = try operation(machine, state, now)
                        } catch {
                            reply.resume(throwing: error)
                            continue
                        }
                        do {
                            try await engine.store.recordTransition(runID: runID, at: now, transition: transition)
                        } catch {
                            failure = error
                            draining = true
                            reply.resume(throwing: error)
                            continue
                        }
                        engine.storeSucceeded(runID: runID)
                        commit(transition)
                        reply.resume(returning: state)
                    case .drain?:
                        draining = true
                    case nil:
                        break
                    }

                case nil:
                    break loop
                }
            }
            // Only timers and the mailbox listener are left. A listener that took an operator's command just before
            // the loop ended puts it back, so it is answered (by the next driver, or with DriverGone) and never lost.
            group.cancelAll()
            while true {
                let wake: Wake?
                do { wake = try await group.next() } catch { continue }
                guard let wake else { break }
                if case .command(let command?) = wake, case .operate = command { mailbox.sendFirst(command) }
            }
            engine.forgetParticipantWaits(runID: runID)
            if let failure { throw RunStoreFailure(runID: runID, underlying: failure) }
        }
        return state
    }

    /// With a slot held: stores that the attempt is sent, then sends it. Returns false (and gives the slot back)
    /// when the state moved on meanwhile (a cancel, the deadline) and the attempt is no longer wanted, or when
    /// storing the intent failed: a call whose intent is not stored is never sent.
    private mutating func send(
        _ index: Int, resend: Bool, in group: inout ThrowingTaskGroup<Wake, any Error>,
        storing: (Bool, () async throws -> Void) async -> Bool
    ) async -> Bool {
        let now = engine.clock.now()
        let stillWanted = resend
            ? state.steps[index].isInFlight
            : (state.steps[index].dueAt.map { $0 <= now } ?? false) && machine.deadlinePassed(state, at: now) == nil
        // A permit is for the call of the phase it was asked for.
        let permitFits = permits[index].map { $0.phase == state.steps[index].status.phase } ?? true
        guard stillWanted, permitFits else {
            engine.limiter.release()
            releasePermit(index)
            return false
        }
        // A callback step's forward attempt gets a new token, stored with the attempt before the request leaves.
        let token = state.steps[index].status == .running && machine.definition(of: index, in: state).action.callback != nil ? CallbackToken.new() : nil
        let transition = resend
            ? machine.resendInterruptedAttempt(state, step: index, at: now)
            : machine.beginAttempt(
                state, step: index, at: now, resumingFrom: waitedOn[index].flatMap { $0.phase == state.steps[index].status.phase ? $0.participant : nil },
                probe: permits[index]?.permit.probe ?? false, callbackToken: token)
        let key = attemptKey(index, in: transition.state)
        let store = engine.store
        let stored = await storing(!resend) {
            if resend {
                try await store.recordAttemptResent(key, at: now, transition: transition)
            } else {
                try await store.recordAttemptStarted(key, at: now, transition: transition)
            }
        }
        guard stored else {
            engine.limiter.release()
            releasePermit(index)
            return false
        }
        waitedOn[index] = nil
        commit(transition)
        launch(key, in: &group)
        return true
    }

    mutating func commit(_ transition: SagaMachine.Transition) {
        state = transition.state
        engine.publish(runID, transition, saga: machine.saga.name, startedAt: startedAt, trace: trace)
    }

    private func attemptKey(_ index: Int, in state: RunState) -> AttemptKey {
        let step = state.steps[index]
        let phase = step.status.phase ?? .forward
        return AttemptKey(runID: runID, step: index, stepName: step.name, phase: phase, number: step.attempts(in: phase))
    }

    /// Asks the participant of the step's call, if it has one, to let the attempt go: a child task waits for the
    /// answer. Returns false when no participant applies (the caller takes an engine slot at once).
    private mutating func admit(_ index: Int, resend: Bool, in group: inout ThrowingTaskGroup<Wake, any Error>) -> Bool {
        guard guarded, let gate = gate(for: index) else { return false }
        let ticket = gate.newTicket()
        admitting[index] = (gate, ticket, resend, state.steps[index].status.phase ?? .forward)
        engine.noteParticipantWait(runID: runID, step: state.steps[index].name, ParticipantWait(participant: gate.id.name, reason: .queued))
        group.addTask { .admitted(step: index, await gate.admit(ticket: ticket, mayDefer: !resend), resend: resend) }
        return true
    }

    /// The participant gate of the call the step would send now.
    private func gate(for index: Int) -> ParticipantGate? {
        engine.participants.gate(for: machine.saga, step: machine.definitionIndex(of: index, in: state)) {
            let phase = state.steps[index].status.phase ?? .forward
            guard let call = machine.definition(of: index, in: state).call(phase) else { return nil }
            return try? context(at: index).render(call.url, encodingForURL: true)
        }
    }

    /// Steps waiting at a gate that the run no longer wants sent (a cancel, the deadline, an abandon) leave its queue.
    private func withdrawUnwanted(draining: Bool) {
        guard !admitting.isEmpty else { return }
        for (index, asked) in admitting {
            let step = state.steps[index]
            let wanted = (asked.resend ? step.isInFlight : step.dueAt != nil) && step.status.phase == asked.phase
            if draining || !wanted { asked.gate.withdraw(asked.ticket) }
        }
    }

    /// Gives back the participant permit of a step's attempt that was not sent or whose outcome is not known.
    private mutating func releasePermit(_ index: Int) {
        if let held = permits.removeValue(forKey: index) { held.gate.finish(held.permit, outcome: nil, duration: .zero) }
    }

    private func requestSlot(_ index: Int, resend: Bool, in group: inout ThrowingTaskGroup<Wake, any Error>) {
        let limiter = engine.limiter
        group.addTask { .slot(step: index, granted: await limiter.acquire(), resend: resend) }
    }

    private func launch(_ key: AttemptKey, in group: inout ThrowingTaskGroup<Wake, any Error>) {
        guard let call = machine.definition(of: key.step, in: state).call(key.phase) else {
            preconditionFailure("launch of step \(key.stepName), which makes no \(key.phase.rawValue) call")
        }
        let request = StepRequest(attempt: key, call: call, context: context(callbackOf: key), trace: trace)
        let awaitsURL = request.context.callback?.url.isEmpty == true
        let executor = engine.executor
        engine.logger.debug(
            "sending attempt",
            metadata: [
                "run_id": "\(runID)", "saga": "\(machine.saga.name)", "step": "\(key.stepName)", "phase": "\(key.phase.rawValue)",
                "attempt": "\(key.number)", "trace_id": "\(trace?.traceID ?? "")",
            ])
        let engine = self.engine
        group.addTask {
            var request = request
            if awaitsURL, let token = request.context.callback?.token {
                request.context.callback = (CallbackToken.url(base: await engine.awaitPublicURL(), token: token), token)
            }
            let started = ContinuousClock.now
            let outcome = await executor.execute(request)
            // Cancelled (shutdown, or a failed store): whatever the call ended with, it is not the participant's
            // answer, so it is not stored; the attempt stays in flight and is sent again with the same key.
            if Task.isCancelled { return .abandoned(key) }
            return .finished(key, outcome, ContinuousClock.now - started)
        }
    }
}

/// Storing one of a run's transitions failed; the run is driven again from the store once it can be written.
public struct RunStoreFailure: Error, CustomStringConvertible {
    public var runID: String
    public var underlying: any Error

    public var description: String { "run \(runID): storing a transition failed: \(underlying)" }
}

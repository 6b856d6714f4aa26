import Foundation
import SkaldCore

/// The driver's part in steps that wait: the runner of approvals and sleeps, and the stored callbacks it applies.
extension RunDriver {
    /// The runner of the steps that wait: a due step begins its wait (its prompt or the time it sleeps until rendered
    /// now), and a waiting step whose time came ends it. Stored before the run moves on.
    mutating func moveWait(_ index: Int, storing: (Bool, () async throws -> Void) async -> Bool) async {
        let now = engine.clock.now()
        let step = state.steps[index]
        guard let due = step.dueAt, due <= now else { return }
        let transition: SagaMachine.Transition
        switch step.status {
        case .waiting where step.wait?.kind == .callback:
            // A callback (or heartbeat) stored but not yet applied here comes first; the wait ends only without one.
            guard await applyStoredCallbacks(storing: storing) else { return }
            guard state.steps[index].status == .waiting, let dueNow = state.steps[index].dueAt, dueNow <= now else { return }
            transition = machine.waitEnded(state, step: index, at: now)
        case .waiting:
            transition = machine.waitEnded(state, step: index, at: now)
        case .running:
            switch WaitRunner.begin(machine.saga.steps[index].action, context: context(), at: now) {
            case .success(let wait): transition = machine.beginWait(state, step: index, wait: wait, at: now)
            case .failure(let problem): transition = machine.waitCannotBegin(state, step: index, reason: problem.reason, at: now)
            }
        default:
            return
        }
        if await storing(true, { try await engine.store.recordTransition(runID: runID, at: now, transition: transition) }) {
            commit(transition)
        }
    }

    /// Applies what the participants of this run's callback steps posted and the store holds: each heartbeat and final
    /// callback that still changes something (the machine says which), stored before the run moves on. Returns false
    /// when reading or storing failed (the driver then stops, as after any store failure).
    @discardableResult
    mutating func applyStoredCallbacks(storing: (Bool, () async throws -> Void) async -> Bool) async -> Bool {
        var stored: [StoredCallback] = []
        let (store, runID) = (engine.store, runID)
        guard await storing(false, { stored = try await store.callbacks(runID: runID) }) else { return false }
        let now = engine.clock.now()
        for transition in machine.applying(stored, to: state, at: now) {
            guard await storing(true, { try await engine.store.recordTransition(runID: runID, at: now, transition: transition) }) else {
                return false
            }
            commit(transition)
        }
        return true
    }
}

extension SagaMachine {
    /// The transitions that apply the stored `callbacks` to `state`, in order, each from the state the one before left:
    /// every heartbeat and final callback that still changes something (the machine says which).
    func applying(_ callbacks: [StoredCallback], to state: RunState, at now: Date) -> [Transition] {
        var state = state
        var transitions: [Transition] = []
        for callback in callbacks {
            var signals: [(CallbackSignal, Date)] = []
            if let at = callback.heartbeatAt { signals.append((.heartbeat, at)) }
            if let final = callback.final { signals.append((final, callback.receivedAt ?? now)) }
            for (signal, receivedAt) in signals {
                guard
                    let transition = callbackReceived(
                        state, step: callback.step, attempt: callback.attempt, signal: signal, receivedAt: receivedAt, at: now)
                else { continue }
                transitions.append(transition)
                state = transition.state
            }
        }
        return transitions
    }
}

extension RunState {
    /// Whether a step waits for a participant's callback (one may be stored and not yet applied).
    var waitsForCallback: Bool { steps.contains { $0.status == .waiting && $0.wait?.kind == .callback } }
}

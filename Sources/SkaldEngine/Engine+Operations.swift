import Foundation
import Logging
import SkaldCore
import Synchronization

/// Operator actions (cancel, retry, resolve, resume, abandon): applied through the run's driver, on the stored run
/// while holding it, or by the node that drives it.
extension Engine {

    /// Cancels a running run: no new forward attempt starts, and the completed steps are compensated.
    /// - Throws: `EngineError` `.notFound`, or `.conflict` when the run is already compensating or finished.
    public func cancel(runID: String, reason: String, by who: String = "") async throws -> RunState {
        try await operate(runID, .cancel(reason: reason, by: who))
    }

    /// Retries the failed compensation of `step` (or every failed one) of a run in `compensation_failed`.
    /// - Throws: `EngineError` `.notFound`, or `.conflict` when the run is in another state.
    /// Undoes a completed run of a saga without a pivot: every step done is compensated, in reverse.
    public func revert(runID: String, note: String, by who: String = "") async throws -> RunState {
        try await operate(runID, .revert(note: note, by: who))
    }

    public func retryCompensation(runID: String, step: String? = nil, by who: String = "", note: String = "") async throws -> RunState {
        try await operate(runID, .retryCompensation(step: step, by: who, note: note))
    }

    /// Records that a step was done by hand (`SagaMachine.resolve`): a failed compensation of a run in
    /// `compensation_failed` (the steps before it are then undone), or a failed step of a stuck run (the run then
    /// goes on from it; `response` is what later steps read of its response).
    /// - Throws: `EngineError` `.notFound`, or `.conflict` naming what can be resolved instead.
    public func resolve(runID: String, step: String, note: String, by who: String = "", response: JSONValue? = nil) async throws -> RunState {
        try await operate(runID, .resolveCompensation(step: step, note: note, by: who, response: response?.jsonText))
    }

    /// Resumes a stuck run: the steps that failed after the pivot are tried again.
    public func resume(runID: String, note: String = "", by who: String = "") async throws -> RunState {
        try await operate(runID, .resume(note: note, by: who))
    }

    /// Stops a run without undoing anything more (the business settled it by hand); the note says how.
    public func abandon(runID: String, note: String, by who: String = "") async throws -> RunState {
        try await operate(runID, .abandon(note: note, by: who))
    }

    /// A person approves or rejects a step waiting for approval: approved, the step succeeds and the run goes on;
    /// rejected, it fails for good and the run compensates what came before.
    /// - Throws: `EngineError` `.notFound`, or `.conflict` naming the steps that wait for a decision.
    public func decide(runID: String, step: String, approve: Bool, note: String, by who: String = "") async throws -> RunState {
        try await operate(runID, .decide(step: step, approve: approve, by: who, note: note))
    }

    static func failedCompensations(_ state: RunState) -> String {
        state.steps.filter { $0.status == .compensationFailed }.map(\.name).joined(separator: ", ")
    }

    typealias Operation = @Sendable (SagaMachine, RunState, Date) throws -> SagaMachine.Transition

    /// Applies an operator's transition, one at a time per run: through the run's driver when one is driving it
    /// (so the two never race), else directly on the stored state while holding the run (so two operators never
    /// overwrite each other), after which the run is driven again if it needs to be. Each operation is checked
    /// against the state it is applied to, so the second of two conflicting actions gets a conflict.
    ///
    /// On a shared store, a run another live node drives gets the action through that node (`forwarded` is set
    /// there, so it is never passed on twice).
    func operate(_ runID: String, _ action: OperatorAction, forwarded: Bool = false) async throws -> RunState {
        let operation: Operation = { machine, state, now in try action.transition(runID: runID, machine: machine, state: state, at: now) }
        // A run held here goes to its driver through its mailbox; one held without a mailbox (another operator's
        // action, a driver starting or stopping) is waited for until it changes hands, not polled. Bounded, so that
        // a run whose driver comes and goes without end answers busy rather than never.
        for _ in 0..<1_000 {
            if let mailbox = runs.existingMailbox(runID) {
                do {
                    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RunState, any Error>) in
                        if !mailbox.send(.operate(operation, continuation, callbacksFirst: action.appliesStoredCallbacksFirst)) { continuation.resume(throwing: DriverGone()) }
                    }
                } catch is DriverGone {
                    // The driver finished meanwhile: look again.
                    continue
                }
            }
            guard claim(runID) else {
                await runs.waitWhileHeldWithoutMailbox(runID)
                try Task.checkCancellation()
                continue
            }
            var handedOver = false
            var drivenElsewhere = false
            defer {
                if !handedOver && !drivenElsewhere {
                    runs.unhold(runID)
                    // Held here, it may have been passed over by a driver starting up: let the engine look at it.
                    if isServing.load(ordering: .acquiring) { submissions.send(Submission(runID: runID, fresh: nil)) }
                }
            }
            let run: StoredRun
            if let shared {
                switch try await shared.claimRun(id: runID) {
                case .notFound:
                    throw EngineError.notFound(runID)
                case .claimed(let claimed):
                    run = claimed
                case .ownedBy(let node):
                    drivenElsewhere = true
                    runs.unhold(runID)
                    guard !forwarded else {
                        throw EngineError(code: .unavailable, message: "run \(runID) moved to node \(node) meanwhile; try again")
                    }
                    return try await forward(try await concrete(action, runID: runID), runID: runID, to: node, shared)
                }
            } else {
                guard let stored = try await store.run(id: runID) else { throw EngineError.notFound(runID) }
                run = stored
            }
            let machine: SagaMachine
            do {
                machine = try self.machine(for: run, checkingState: !action.isAbandon)
            } catch let error as UnrunnableRunError {
                throw EngineError(code: .conflict, message: error.description)
            }
            var input = run.input
            // Every action but abandon may send calls (a retry of a failed compensation too): the node must be able
            // to build them.
            if !action.isAbandon {
                do {
                    input = try await inputToRun(run, machine)
                } catch let error as CannotRunHere {
                    throw EngineError(code: .unavailable, message: "\(error.description); nothing was done; send it to a node that can run it")
                }
            }
            let now = clock.now()
            var state = run.state
            if action.appliesStoredCallbacksFirst, state.waitsForCallback {
                // A callback stored and not yet applied (its hand-over found no driver) comes before the action.
                for transition in machine.applying(try await store.callbacks(runID: runID), to: state, at: now) {
                    try await RunFence.$epoch.withValue(run.claimEpoch) {
                        try await store.recordTransition(runID: runID, at: now, transition: transition)
                    }
                    publish(runID, transition, saga: run.sagaName, startedAt: run.createdAt, trace: run.trace)
                    state = transition.state
                }
            }
            let transition = try operation(machine, state, now)
            try await RunFence.$epoch.withValue(run.claimEpoch) {
                try await store.recordTransition(runID: runID, at: now, transition: transition)
            }
            publish(runID, transition, saga: run.sagaName, startedAt: run.createdAt, trace: run.trace)
            if !transition.state.status.isTerminal, !isDraining.load(ordering: .acquiring), isServing.load(ordering: .acquiring) {
                // The run stays held until its driver takes over, so no other operator reads it in between.
                _ = register(runID)
                handedOver = submissions.send(
                    Submission(
                        runID: runID,
                        fresh: FreshRun(
                            machine: machine, input: input, state: transition.state, startedAt: run.createdAt, trace: run.trace,
                            epoch: run.claimEpoch),
                        claimed: true))
                if !handedOver { unregister(runID) }
            }
            return transition.state
        }
        throw EngineError(code: .conflict, message: "run \(runID) is busy with another action; try again")
    }

    /// Hands the action to the node that drives the run, and answers as that node did.
    /// `retry` as the action a node of an earlier version knows (`resume` or `retryCompensation`), chosen on the run's
    /// stored state; the node that drives the run checks it against the state it holds, as for any action.
    func concrete(_ action: OperatorAction, runID: String) async throws -> OperatorAction {
        guard case .retry(let step, let who, let note) = action else { return action }
        guard let run = try await store.run(id: runID) else { throw EngineError.notFound(runID) }
        return run.state.status == .stuck ? .resume(note: note, by: who) : .retryCompensation(step: step, by: who, note: note)
    }

    func forward(_ action: OperatorAction, runID: String, to node: String, _ shared: any SharedRunStore) async throws -> RunState {
        let timeout = configuration.node.commandTimeout
        let answer = try await shared.forward(action, runID: runID, to: node, timeout: timeout)
        switch answer.outcome {
        case .done:
            guard let run = try await store.run(id: runID) else { throw EngineError.notFound(runID) }
            return run.state
        case .notFound: throw EngineError.notFound(runID)
        case .conflict: throw EngineError(code: .conflict, message: answer.message)
        case .unavailable: throw EngineError(code: .unavailable, message: answer.message)
        case .accepted: throw EngineError(code: .accepted, message: answer.message)
        }
    }

    /// Says once per process, in the log and the run's history, that a stored run cannot be driven; the run is left
    /// as it is stored, and every other run carries on.
    func markUnrunnable(_ run: StoredRun, _ error: UnrunnableRunError) async {
        guard unrunnableRuns.withLock({ $0.insert(run.id).inserted }) else { return }
        logger.error("run cannot be driven; it is left as stored", metadata: ["run_id": "\(run.id)", "problems": "\(error.problems)"])
        let event = RunEvent(
            at: clock.now(), kind: .runUnrunnable, message: error.description, data: ["problems": .array(error.problems.map(JSONValue.string))])
        let transition = SagaMachine.Transition(state: run.state, events: [event], changedSteps: [])
        do {
            try await store.recordTransition(runID: run.id, at: event.at, transition: transition)
            publish(run.id, transition, saga: run.sagaName, startedAt: run.createdAt, trace: run.trace)
        } catch {
            logger.error("could not record that the run cannot be driven", metadata: ["run_id": "\(run.id)", "error": "\(error)"])
        }
    }
}

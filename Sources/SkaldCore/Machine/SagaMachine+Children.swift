import Foundation

/// What the driver found of a step's child run when it looked.
public enum ChildState: Sendable, Hashable {
    /// Going forward or compensating: not ended yet.
    case running
    case completed(output: JSONValue)
    /// Compensated, cancelled included: nothing it did stays applied.
    case compensated(reason: String)
    /// Stopped for a person: in compensation_failed, stuck, or abandoned by an operator.
    case needsPerson(status: RunStatus, reason: String)
    /// The child run is not in the database (pruned, or removed by hand).
    case missing
}

/// Sagas inside sagas: a step that runs another saga as a child run. The driver starts the child (once: its idempotency
/// key is the step's) and looks at it whenever the step's `dueAt` comes; the machine says what each look means.
extension SagaMachine {
    /// The first look at a child is soon after it starts; later ones come less often (a quarter of the time waited so
    /// far), up to this.
    public static let longestChildLook: TimeInterval = 5
    public static let firstChildLook: TimeInterval = 0.2

    static func nextLook(since: Date, at now: Date) -> Date {
        now.addingTimeInterval(min(Self.longestChildLook, max(Self.firstChildLook, now.timeIntervalSince(since) / 4)))
    }

    /// A due step's child run was started (or found, started before a crash): the step waits for it.
    public func childStarted(_ state: RunState, step index: Int, child: String, at now: Date) -> Transition {
        beginWait(state, step: index, wait: StepWait(kind: .child, since: now, until: Self.nextLook(since: now, at: now), token: child), at: now)
    }

    /// What a look at the step's child run found: the step succeeds with the child's output, fails with nothing
    /// applied, is undone (the child reverted), or waits for the next look. A child stopped for a person keeps the step
    /// waiting, and says so once.
    public func childChecked(_ state: RunState, step index: Int, child: ChildState, at now: Date) -> Transition {
        let before = state
        var state = state
        var events: [RunEvent] = []
        let step = state.steps[index]
        let name = step.name
        let childID = step.wait?.token ?? "?"
        func waitMore(_ reason: String?) {
            state.steps[index].dueAt = Self.nextLook(since: step.wait?.since ?? now, at: now)
            if let reason, state.steps[index].lastError != reason {
                state.steps[index].lastError = reason
                events.append(
                    RunEvent(
                        at: now, kind: .childNeedsOperator, step: name, phase: step.status == .compensating ? .compensate : .forward,
                        message: "\(name) waits: \(reason)", data: ["child": .string(childID)]))
            } else if reason == nil {
                state.steps[index].lastError = nil
            }
        }
        switch (step.status, child) {
        case (.waiting, .running), (.compensating, .running), (.compensating, .completed):
            // (A completed child of a step being undone: the driver has asked for its revert.)
            waitMore(nil)
        case (.waiting, .completed(let output)):
            state.steps[index].wait?.output = output
            succeed(&state, index: index, at: now, events: &events, how: "its child run \(childID) completed", data: ["child": .string(childID), "output": output])
            // Completed after the run turned back: it is reverted like any step done.
            advanceCompensation(&state, at: now, events: &events)
        case (.waiting, .compensated(let reason)):
            let why = "its child run \(childID) was compensated (\(reason)): nothing it did stays applied"
            state.steps[index].dueAt = nil
            state.steps[index].lastError = why
            forwardFailedForGood(
                &state, index: index, failure: AttemptFailure(kind: .status, reason: why, isRetryable: false, mayHaveApplied: false),
                attempt: 0, at: now, events: &events)
        case (.compensating, .compensated):
            state.steps[index].status = .compensated
            state.steps[index].dueAt = nil
            state.steps[index].lastError = nil
            events.append(
                RunEvent(
                    at: now, kind: .stepCompensated, step: name, phase: .compensate, message: "\(name) compensated: its child run \(childID) was reverted",
                    data: ["child": .string(childID)]))
            advanceCompensation(&state, at: now, events: &events)
        case (_, .needsPerson(let status, let reason)):
            waitMore("its child run \(childID) is \(status.rawValue) (\(reason)); settle it there (skald status \(childID)), and this run goes on when it ends")
        case (_, .missing):
            waitMore("its child run \(childID) is not in the database; find out what it did, then resolve or abandon this run")
        default:
            return Transition(state: state, events: [], changedSteps: [])
        }
        return Transition(state: state, events: events, before: before)
    }

    /// The steps whose child run is going on while their run turned back (or was abandoned): the driver cancels
    /// those children, so that they compensate and the step fails with nothing applied.
    public func childrenToCancel(_ state: RunState) -> [(step: Int, child: String)] {
        guard state.status != .running else { return [] }
        return state.steps.indices.compactMap { index in
            let step = state.steps[index]
            guard step.status == .waiting, step.wait?.kind == .child, let child = step.wait?.token else { return nil }
            return (index, child)
        }
    }

    /// An operator reverts a completed run: every step done is undone, in reverse, as if the run had failed after its
    /// last step. Only for a saga without a pivot: past its point of no return a saga cannot turn back. A parent run
    /// reverts its child this way when it undoes the step that ran it.
    public func revert(_ state: RunState, by who: String = "", note: String, at now: Date) -> Transition? {
        guard state.status == .completed, saga.pivot == nil else { return nil }
        let before = state
        var state = state
        let why = "reverted by \(Self.who(who))" + (note.isEmpty ? "" : ": \(note)")
        var events = [
            RunEvent(at: now, kind: .runReverted, message: "run \(why)", data: ["note": .string(note), "by": .string(who)])
        ]
        beginCompensation(&state, failure: RunFailure(step: nil, reason: why), at: now, events: &events)
        return Transition(state: state, events: events, before: before)
    }
}

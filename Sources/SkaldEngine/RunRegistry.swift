import Synchronization

/// Which runs this engine holds (so no run is ever driven twice at once), the mailbox of each run's driver, and who
/// waits for a held run to change hands. One lock over one state; each method changes the state and returns what to
/// do outside the lock (close a mailbox, wake waiters), in the manner of swift-nio's state machines.
final class RunRegistry: Sendable {
    private struct State {
        /// Runs held here: by a driver, or for an instant by an operator's action or a driver starting or stopping.
        var held: Set<String> = []
        var mailboxes: [String: Mailbox<DriverCommand>] = [:]
        /// Callers waiting for a held run without a mailbox to be let go of, or to get its driver's mailbox.
        var waiters: [String: [(id: Int, continuation: CheckedContinuation<Void, Never>)]] = [:]
        var nextWaiter = 0

        /// Wakes the waiters of `runID`: its state changed.
        mutating func takeWaiters(_ runID: String) -> [CheckedContinuation<Void, Never>] {
            (waiters.removeValue(forKey: runID) ?? []).map(\.continuation)
        }
    }

    private let state = Mutex(State())

    /// Holds `runID` for this caller; false when something else here holds it.
    func hold(_ runID: String) -> Bool {
        state.withLock { $0.held.insert(runID).inserted }
    }

    func isHeld(_ runID: String) -> Bool { state.withLock { $0.held.contains(runID) } }

    var heldCount: Int { state.withLock { $0.held.count } }

    /// The mailbox of the run's driver, made now if it has none (before its driver starts, so that nothing sent to
    /// the run is lost in between).
    func mailbox(for runID: String) -> Mailbox<DriverCommand> {
        let (mailbox, waiters) = state.withLock { state -> (Mailbox<DriverCommand>, [CheckedContinuation<Void, Never>]) in
            if let existing = state.mailboxes[runID] { return (existing, []) }
            let mailbox = Mailbox<DriverCommand>()
            state.mailboxes[runID] = mailbox
            return (mailbox, state.takeWaiters(runID))
        }
        for waiter in waiters { waiter.resume() }
        return mailbox
    }

    /// The run's driver's mailbox, if it has one.
    func existingMailbox(_ runID: String) -> Mailbox<DriverCommand>? {
        state.withLock { $0.mailboxes[runID] }
    }

    var allMailboxes: [Mailbox<DriverCommand>] { state.withLock { Array($0.mailboxes.values) } }

    /// How many callers wait for the run to change hands (for tests).
    func waiterCount(_ runID: String) -> Int { state.withLock { $0.waiters[runID]?.count ?? 0 } }

    /// Lets go of the run entirely (its hold and its mailbox); the caller closes the returned mailbox.
    func release(_ runID: String) -> Mailbox<DriverCommand>? {
        let (mailbox, waiters) = state.withLock { state in
            state.held.remove(runID)
            return (state.mailboxes.removeValue(forKey: runID), state.takeWaiters(runID))
        }
        for waiter in waiters { waiter.resume() }
        return mailbox
    }

    /// Drops the run's mailbox only (a run started here whose driver will not run here); the caller closes it.
    func dropMailbox(_ runID: String) -> Mailbox<DriverCommand>? {
        let (mailbox, waiters) = state.withLock { state in (state.mailboxes.removeValue(forKey: runID), state.takeWaiters(runID)) }
        for waiter in waiters { waiter.resume() }
        return mailbox
    }

    /// Lets go of the run's hold only (an operator's action that did not hand it to a driver).
    func unhold(_ runID: String) {
        let waiters = state.withLock { state in
            state.held.remove(runID)
            return state.takeWaiters(runID)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the run is no longer held without a mailbox: let go of, or given its driver's mailbox. Returns
    /// at once when that is already so, and when the task is cancelled (the caller checks). The hand-off an
    /// operator's action waits on instead of polling.
    func waitWhileHeldWithoutMailbox(_ runID: String) async {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waiting = state.withLock { state -> Bool in
                    guard !Task.isCancelled, state.held.contains(runID), state.mailboxes[runID] == nil else { return false }
                    state.waiters[runID, default: []].append((id, continuation))
                    return true
                }
                if !waiting { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let index = state.waiters[runID]?.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters[runID]?.remove(at: index).continuation
            }
            waiter?.resume()
        }
    }
}

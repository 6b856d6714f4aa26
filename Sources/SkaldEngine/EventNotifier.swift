import Synchronization

/// Wakes readers that wait for a run's next events (long polling), without missing one published between
/// their read of the store and their wait.
public final class EventNotifier: Sendable {
    private struct State {
        var versions: [String: Int] = [:]
        var waiters: [String: [(id: Int, continuation: CheckedContinuation<Void, Never>)]] = [:]
        var nextID = 0
        var isClosed = false
        /// How many entries were dropped: the version of a run without an entry, negated, so that a reader who
        /// read a version before its run's entry was dropped sees a change rather than waiting for one.
        var dropped = 0
        /// Versions come from one counter for all runs, so a run whose entry was dropped and then published
        /// again (a retried compensation) never repeats a version a reader already holds.
        var counter = 0

        func version(of runID: String) -> Int { versions[runID] ?? -dropped }
    }

    private let state = Mutex(State())

    /// Times the waits' timeouts (the engine's injected clock).
    let clock: any EngineClock

    public init(clock: any EngineClock = SystemClock()) {
        self.clock = clock
    }

    /// How many runs the notifier holds an entry for (runs in progress here that published something).
    public var trackedRuns: Int { state.withLock { $0.versions.count } }

    /// How many runs have readers waiting.
    public var runsWaitedOn: Int { state.withLock { $0.waiters.count } }

    /// Drops the run's entry: it is no longer driven here (another node drives it, or its driver stopped), so
    /// nothing here would ever drop it at its end. A reader holding its old version sees a change and reads the
    /// store again; waiters are not woken.
    func forget(_ runID: String) {
        state.withLock { state in
            if state.versions.removeValue(forKey: runID) != nil { state.dropped += 1 }
        }
    }

    /// Read before reading the store; pass to `wait` afterwards.
    public func version(of runID: String) -> Int {
        state.withLock { $0.version(of: runID) }
    }

    /// Wakes every waiter now and makes later waits return at once (the server is stopping).
    public func close() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isClosed = true
            defer { state.waiters.removeAll() }
            return state.waiters.values.flatMap { $0.map(\.continuation) }
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Wakes the run's waiters. For a run that `finished`, its entry is dropped, so the notifier holds only
    /// runs in progress: a reader that read the old version then sees a change and reads the store again, which
    /// is all a version is for.
    func notify(_ runID: String, finished: Bool = false) {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if finished {
                state.versions.removeValue(forKey: runID)
                state.dropped += 1
            } else {
                state.counter += 1
                state.versions[runID] = state.counter
            }
            return state.waiters.removeValue(forKey: runID)?.map(\.continuation) ?? []
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Wakes the readers waiting on these runs, without changing their versions: another node stored new events
    /// for them (a `NOTIFY` through the shared database), so each reads the store again.
    func wakeReaders(of runIDs: [String]) {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.waiters.isEmpty else { return [] }
            return runIDs.flatMap { state.waiters.removeValue(forKey: $0)?.map(\.continuation) ?? [] }
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Wakes every reader to read the store again (signals from other nodes may have been missed).
    func wakeAllReaders() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            defer { state.waiters.removeAll() }
            return state.waiters.values.flatMap { $0.map(\.continuation) }
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Returns when the run's events change after `version`, when `timeout` passes, or when the task is cancelled.
    public func wait(for runID: String, after version: Int, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForChange(runID, after: version) }
            group.addTask { [clock] in try? await clock.sleep(until: clock.now().addingTimeInterval(timeout.seconds)) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForChange(_ runID: String, after version: Int) async {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.isClosed || state.version(of: runID) != version || Task.isCancelled { return true }
                    state.waiters[runID, default: []].append((id, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard var waiting = state.waiters[runID], let index = waiting.firstIndex(where: { $0.id == id }) else { return nil }
                let waiter = waiting.remove(at: index)
                // A long poll that timed out leaves nothing behind.
                state.waiters[runID] = waiting.isEmpty ? nil : waiting
                return waiter.continuation
            }
            waiter?.resume()
        }
    }
}

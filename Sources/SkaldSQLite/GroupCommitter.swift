import Dispatch
import GRDB
import SkaldEngine
import Synchronization

/// Commits many writers' changes in one SQLite transaction (group commit).
///
/// Each caller hands in its change and waits; a single writer thread takes every change queued so far, applies
/// them in one transaction, commits, and only then answers each caller. So a caller still never acts before its
/// change is stored, but a thousand runs finishing attempts at once cost one commit instead of a thousand.
///
/// A change that throws must not take the others down with it, nor leave half of itself behind: when any change
/// in a batch throws, the batch is rolled back and each change is applied again in a transaction of its own.
final class GroupCommitter: Sendable {
    typealias Change = @Sendable (Database) throws -> Void

    private struct Pending: Sendable {
        var apply: Change
        var finish: @Sendable ((any Error)?) -> Void
    }

    private struct Queue: Sendable {
        var pending: [Pending] = []
        var writing = false
        var paused = false
    }

    private let pool: DatabasePool
    private let queue = Mutex(Queue())
    private let thread = DispatchQueue(label: "skald.sqlite.group-commit")
    private let counters = Mutex((transactions: 0, changes: 0))
    private let metrics: StoreMetrics

    init(pool: DatabasePool, metrics: StoreMetrics = StoreMetrics()) {
        self.pool = pool
        self.metrics = metrics
    }

    /// Applies `change` in a transaction shared with other callers, and returns once it is committed.
    func write<T: Sendable>(_ change: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let result = ResultSlot<T>()
            enqueue(
                Pending(
                    apply: { db in result.value = try change(db) },
                    finish: { error in
                        if let error {
                            continuation.resume(throwing: error)
                        } else {
                            continuation.resume(returning: result.value!)
                        }
                    }))
        }
    }

    /// How many transactions were committed, and how many changes they carried.
    var statistics: (transactions: Int, changes: Int) { counters.withLock { $0 } }

    /// Changes waiting for the writer.
    var queued: Int { queue.withLock { $0.pending.count } }

    /// For tests: hold every change in the queue until `resume()`, so a test can put several in one batch.
    func pause() { queue.withLock { $0.paused = true } }

    func resume() {
        let start = queue.withLock { queue in
            queue.paused = false
            guard !queue.writing, !queue.pending.isEmpty else { return false }
            queue.writing = true
            return true
        }
        if start { thread.async { self.drain() } }
    }

    private func enqueue(_ pending: Pending) {
        let start = queue.withLock { queue in
            queue.pending.append(pending)
            guard !queue.writing, !queue.paused else { return false }
            queue.writing = true
            return true
        }
        if start { thread.async { self.drain() } }
    }

    /// Runs on the writer thread until the queue is empty.
    private func drain() {
        while true {
            let batch: [Pending] = queue.withLock { queue in
                guard !queue.pending.isEmpty, !queue.paused else {
                    queue.writing = false
                    return []
                }
                defer { queue.pending.removeAll(keepingCapacity: true) }
                return queue.pending
            }
            if batch.isEmpty { return }
            commit(batch)
        }
    }

    private func commit(_ batch: [Pending]) {
        do {
            let started = ContinuousClock.now
            try pool.write { db in
                for pending in batch { try pending.apply(db) }
            }
            metrics.committed(transitions: batch.count, in: ContinuousClock.now - started)
            counters.withLock {
                $0.transactions += 1
                $0.changes += batch.count
            }
            for pending in batch { pending.finish(nil) }
        } catch {
            guard batch.count > 1 else {
                batch[0].finish(error)
                return
            }
            // Something in the batch failed and the whole transaction was rolled back: apply each alone.
            for pending in batch { commit([pending]) }
        }
    }
}

/// Where a change's result waits between the writer thread applying it and the commit answering its caller.
/// Written once on the writer thread, read once after, on the same thread.
private final class ResultSlot<T>: @unchecked Sendable {
    var value: T?
}

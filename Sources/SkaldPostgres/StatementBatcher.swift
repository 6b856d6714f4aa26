import Foundation
import Logging
import PostgresNIO
import SkaldCore
import SkaldEngine
import Synchronization

/// Gathers the writes that runs make at the same moment and stores them together, in one statement (group
/// commit): transitions (`TransitionBatchStatement`) and new runs (`CreateRunsStatement`).
///
/// A writer hands in its write, as a JSON object the statement reads, and waits until the batch holding it is
/// committed, so it still never acts before its write is stored. There is no timer: a batch leaves as soon as a
/// connection is free for it (at most `maximumInFlight` batches at once), so a lone write waits for nothing, and
/// under load the writes that arrive while a batch is on its way leave together in the next one. A batch holds at
/// most one write per run (a run's driver writes one at a time; the rule keeps each run's order plain) and at most
/// `maximumBatch`. The statement reads each entry's number in the batch as `n`.
final class StatementBatcher: Sendable {
    /// What became of a write handed in.
    enum Outcome: Sendable {
        /// Stored.
        case applied
        /// Not applied: the statement refused it (a transition of a run that is not this node's, or whose attempt is
        /// not as it expects; a new run whose idempotency key another run holds), or the batch's statement failed as
        /// a whole. Nothing of it is stored; the caller writes it alone to hear why.
        case refused
    }

    struct Pending: Sendable {
        var runID: String
        var entry: [String: JSONValue]
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct Queue: Sendable {
        var pending: [Pending] = []
        var inFlight = 0
        var paused = false
    }

    let maximumBatch: Int
    let maximumInFlight: Int
    private let queue = Mutex(Queue())
    private let send: @Sendable (_ entries: [[String: JSONValue]]) async throws -> Set<Int>
    private let metrics: StoreMetrics
    private let counters = Mutex((batches: 0, writes: 0))

    /// - Parameter send: stores a batch (its entries, each numbered `n`) in one statement, and answers the numbers of
    ///   the entries applied.
    init(
        maximumBatch: Int = 256, maximumInFlight: Int = 2, metrics: StoreMetrics,
        send: @escaping @Sendable (_ entries: [[String: JSONValue]]) async throws -> Set<Int>
    ) {
        self.maximumBatch = maximumBatch
        self.maximumInFlight = maximumInFlight
        self.metrics = metrics
        self.send = send
    }

    /// How many batches were committed, and how many writes they held (for tests and the benchmark).
    var statistics: (batches: Int, writes: Int) { counters.withLock { $0 } }

    /// Writes waiting for a batch.
    var queued: Int { queue.withLock { $0.pending.count } }

    /// For tests: hold every write in the queue until `resume()`, so a test can put several in one batch.
    func pause() { queue.withLock { $0.paused = true } }

    func resume() {
        let starts = queue.withLock { queue -> Int in
            queue.paused = false
            let starts = min(maximumInFlight - queue.inFlight, queue.pending.isEmpty ? 0 : 1)
            queue.inFlight += max(0, starts)
            return max(0, starts)
        }
        for _ in 0..<starts { Task { await self.drain() } }
    }

    /// Hands in one write and returns once the batch holding it is committed (`.applied`) or it was refused.
    /// - Parameter entry: the write as the statement reads it (its number in the batch, `n`, is added).
    /// - Throws: `StoreUnavailable` when the database cannot be reached (whether the batch was committed is then
    ///   unknown, as for any write whose answer was lost).
    func submit(runID: String, entry: [String: JSONValue]) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let start = queue.withLock { queue -> Bool in
                queue.pending.append(Pending(runID: runID, entry: entry, continuation: continuation))
                guard queue.inFlight < maximumInFlight, !queue.paused else { return false }
                queue.inFlight += 1
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Sends batches until nothing is queued.
    private func drain() async {
        while true {
            let batch = queue.withLock { queue -> [Pending] in
                guard !queue.pending.isEmpty, !queue.paused else {
                    queue.inFlight -= 1
                    return []
                }
                var taken: [Pending] = []
                var left: [Pending] = []
                var runs: Set<String> = []
                for pending in queue.pending {
                    if taken.count < maximumBatch, runs.insert(pending.runID).inserted {
                        taken.append(pending)
                    } else {
                        left.append(pending)
                    }
                }
                queue.pending = left
                return taken
            }
            if batch.isEmpty { return }
            await commit(batch)
        }
    }

    private func commit(_ batch: [Pending]) async {
        let entries = batch.enumerated().map { number, pending in
            var entry = pending.entry
            entry["n"] = .int(Int64(number))
            return entry
        }
        let started = ContinuousClock.now
        do {
            let applied = try await send(entries)
            metrics.committed(transitions: applied.count, in: ContinuousClock.now - started)
            counters.withLock {
                $0.batches += 1
                $0.writes += batch.count
            }
            for (number, pending) in batch.enumerated() {
                pending.continuation.resume(returning: applied.contains(number) ? .applied : .refused)
            }
        } catch let error as StoreUnavailable {
            for pending in batch { pending.continuation.resume(throwing: error) }
        } catch {
            // Something in the batch made the whole statement fail, and none of it is stored: each is written alone.
            for pending in batch { pending.continuation.resume(returning: .refused) }
        }
    }
}

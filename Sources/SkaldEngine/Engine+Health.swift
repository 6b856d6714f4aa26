import Foundation
import Logging
import SkaldCore
import Synchronization

/// Whether storing runs' progress works, as `/health` tells it.
extension Engine {
    // MARK: - Health

    /// What went wrong when storing runs' transitions, while it keeps going wrong.
    public struct StoreTrouble: Sendable {
        /// The first failure since every run last stored its progress.
        public var since: Date
        /// The latest failure, as the store described it (for the log, not the public).
        public var lastError: String
        public var failures: Int
        /// Runs whose last write failed and that have not stored any progress since.
        public var runs: Set<String>
    }

    /// Nil while every run stores its progress; otherwise since when and how it fails.
    public var storeTrouble: StoreTrouble? { storeFailingSince.withLock { $0 } }

    func storeFailed(runID: String, _ error: any Error) {
        let now = clock.now()
        storeFailingSince.withLock { trouble in
            var current = trouble ?? StoreTrouble(since: now, lastError: "", failures: 0, runs: [])
            current.lastError = "\(error)"
            current.failures += 1
            current.runs.insert(runID)
            trouble = current
            storeIsFailing.store(true, ordering: .releasing)
        }
    }

    /// A run stored progress: it no longer counts as held up by the store.
    func storeSucceeded(runID: String) {
        guard storeIsFailing.load(ordering: .acquiring) else { return }
        storeFailingSince.withLock { trouble in
            trouble?.runs.remove(runID)
            if trouble?.runs.isEmpty == true {
                trouble = nil
                storeIsFailing.store(false, ordering: .releasing)
            }
        }
    }

    // MARK: - Readiness

    /// Why this node should not be given work now, for an orchestrator's readiness probe (`/health/ready`); empty
    /// when it is ready. Each reason is fit for the public: it never carries the database's own error text.
    public var notReadyBecause: [String] {
        var reasons: [String] = []
        if !isServing.load(ordering: .acquiring) { reasons.append("the engine is not serving runs (it is starting or has stopped)") }
        if isDraining.load(ordering: .acquiring) { reasons.append("the node is draining: it is shutting down") }
        if let trouble = storeTrouble {
            reasons.append("storing runs' progress has failed since \(trouble.since.formatted(.iso8601))")
        }
        if let node, !node.holdsLease(at: clock.now()) {
            reasons.append("the node does not hold its lease on the shared database (its last renewal failed or is overdue)")
        }
        return reasons
    }
}

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
}

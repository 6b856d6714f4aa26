import Foundation
import SkaldCore

/// What the engine says about its node (the work itself is `NodeCoordinator`'s), and draining.
extension Engine {
    /// Whether the engine shares its database with other nodes (PostgreSQL).
    public var sharesRuns: Bool { node != nil }

    /// Whether a driver of this engine is working on the run now.
    public func drivesHere(_ runID: String) -> Bool { runs.isHeld(runID) }

    /// Attempts in flight now, across all runs this engine drives.
    public var attemptsInFlight: Int { limiter.inUse }

    /// Runs `body` while this node holds a lease on a shared store (renewed in the background), then lets go of the
    /// runs it still owns so other nodes take them at once. With a store of its own, just runs `body`.
    public func withLease<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard let node else { return try await body() }
        return try await node.withLease(body)
    }

    /// The runs a one-shot `resume` drives: every unfinished one, or on a shared store those no live node owns.
    func runsToResume() async throws -> [StoredRun] {
        guard let node else { return try await store.unfinishedRuns() }
        return try await node.runsToResume(excluding: definitionsItCannotRun)
    }

    /// Stops taking new work: every driver finishes its attempts in flight and returns.
    /// Runs started afterwards are stored and driven by the next engine to start on this database.
    public func drain() {
        isDraining.store(true, ordering: .releasing)
        submissions.close()
        let mailboxes = runs.allMailboxes
        for mailbox in mailboxes { mailbox.send(.drain) }
    }
}

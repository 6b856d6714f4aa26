import Foundation
import Logging
import SkaldCore
import Synchronization

/// Sharing a database with other nodes (PostgreSQL): the lease, claiming runs, and carrying out the operator
/// actions other nodes forward; and draining.
extension Engine {

    /// Whether the engine shares its database with other nodes (PostgreSQL).
    public var sharesRuns: Bool { shared != nil }

    /// Whether a driver of this engine is working on the run now.
    public func drivesHere(_ runID: String) -> Bool { runs.isHeld(runID) }

    /// Attempts in flight now, across all runs this engine drives.
    public var attemptsInFlight: Int { limiter.inUse }

    /// Runs `body` while this node holds a lease on a shared store (renewed in the background), then lets go of the
    /// runs it still owns so other nodes take them at once. With a store of its own, just runs `body`.
    public func withLease<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard let shared else { return try await body() }
        let lease = configuration.node.lease
        try await renewMeasuringSkew(shared, lease)
        logger.info("node joined", metadata: ["node": "\(shared.node)", "lease": "\(DurationText.format(lease))"])
        // The keeper is a child task: it renews the lease every third of it (by the injected clock) until the body
        // (with the forwarded actions it took) is done, and is cancelled then.
        let result: Result<T, any Error> = await withTaskGroup(of: Void.self) { keeper in
            keeper.addTask { await self.keepLease(shared, lease) }
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            keeper.cancelAll()
            return result
        }
        do {
            // Also when the engine was cancelled: its runs are let go of either way.
            // In a task of its own, awaited here, so that the engine's cancellation does not cancel it.
            try await Task { try await shared.endLease() }.value
        } catch {
            logger.error("letting go of the node's runs failed; other nodes take them when its lease expires", metadata: ["error": "\(error)"])
        }
        return try result.get()
    }

    /// Renews the node's lease every third of it until cancelled.
    private func keepLease(_ shared: any SharedRunStore, _ lease: Duration) async {
        while !Task.isCancelled {
            do {
                try await clock.sleep(until: clock.now().addingTimeInterval((lease / 3).seconds))
            } catch {
                return
            }
            do {
                try await renewMeasuringSkew(shared, lease)
            } catch {
                logger.error("renewing the node's lease failed", metadata: ["node": "\(shared.node)", "error": "\(error)"])
            }
        }
    }

    /// The runs a one-shot `resume` drives: every unfinished one, or on a shared store those no live node owns.
    func runsToResume() async throws -> [StoredRun] {
        guard let shared else { return try await store.unfinishedRuns() }
        var runs = try await shared.runsHeldHere()
        while true {
            let claimed = try await shared.claimRuns(limit: 500, excluding: definitionsItCannotRun)
            runs += claimed
            if claimed.count < 500 { return runs }
        }
    }

    /// Claims runs while the node has room, and carries out actions forwarded to it, whenever another node signals
    /// and at least every poll interval, until the engine drains.
    func claimWork(_ shared: any SharedRunStore) async {
        let doorbell = self.doorbell
        let commandsSignalled = self.commandsSignalled
        let limits = configuration.node
        // The actions taken from other nodes are child tasks of this group: when the node drains, the group waits for
        // them, so a taken action is never dropped by a node that stops (its caller was told it is being carried
        // out); when the engine is cancelled (past the shutdown timeout), they are cancelled with it.
        // Listening is a child task too, cancelled once the node stops claiming.
        await withTaskGroup(of: Void.self) { listening in
            listening.addTask {
                do {
                    try await shared.listen { wake in
                        if case .command = wake { commandsSignalled.raise() }
                        doorbell.ring()
                    }
                } catch {
                    self.logger.error("listening for other nodes failed; polling instead", metadata: ["error": "\(error)"])
                }
            }
            await withDiscardingTaskGroup { actions in
                var polled = true
                while !Task.isCancelled && !isDraining.load(ordering: .acquiring) {
                    // Forwarded actions when a node announced one, and at every poll (an announcement may be missed).
                    if commandsSignalled.take() || polled {
                        await carryOutForwardedActions(shared, in: &actions)
                    }
                    claiming: while !isDraining.load(ordering: .acquiring) {
                        let room = limits.maxRuns - runs.heldCount
                        guard room > 0 else { break }
                        let limit = min(room, NodeConfiguration.claimBatch)
                        let runs: [StoredRun]
                        do {
                            runs = try await shared.claimRuns(limit: limit, excluding: definitionsItCannotRun)
                        } catch {
                            logger.error("claiming runs failed", metadata: ["error": "\(error)"])
                            break claiming
                        }
                        for run in runs {
                            logger.debug("run claimed", metadata: ["run_id": "\(run.id)", "node": "\(shared.node)"])
                            submissions.send(Submission(runID: run.id, fresh: nil, stored: run))
                        }
                        if runs.count < limit { break }
                    }
                    polled = !(await doorbell.wait(upTo: limits.pollInterval))
                }
            }
            listening.cancelAll()
        }
    }

    /// Takes the actions other nodes forwarded to this one, each carried out and answered in a child task of `actions`.
    func carryOutForwardedActions(_ shared: any SharedRunStore, in actions: inout DiscardingTaskGroup) async {
        let commands: [NodeCommand]
        do {
            commands = try await shared.pendingCommands()
        } catch {
            logger.error("reading actions forwarded by other nodes failed", metadata: ["error": "\(error)"])
            return
        }
        for command in commands where commandsInProgress.withLock({ $0.insert(command.id).inserted }) {
            actions.addTask {
                let answer: CommandAnswer
                do {
                    _ = try await self.operate(command.runID, command.action, forwarded: true)
                    answer = CommandAnswer(outcome: .done)
                } catch let error as EngineError {
                    switch error.code {
                    case .notFound: answer = CommandAnswer(outcome: .notFound, message: error.message)
                    case .conflict, .definitionUnrunnable: answer = CommandAnswer(outcome: .conflict, message: error.message)
                    case .unavailable: answer = CommandAnswer(outcome: .unavailable, message: error.message)
                    case .accepted: answer = CommandAnswer(outcome: .accepted, message: error.message)
                    }
                } catch {
                    answer = CommandAnswer(outcome: .unavailable, message: "\(error)")
                }
                do {
                    try await shared.answer(command.id, with: answer)
                } catch {
                    self.logger.error("answering a forwarded action failed", metadata: ["run_id": "\(command.runID)", "error": "\(error)"])
                }
                self.commandsInProgress.withLock { _ = $0.remove(command.id) }
            }
        }
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

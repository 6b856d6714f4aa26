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
        let keeper = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: lease / 3)
                guard !Task.isCancelled else { return }
                do {
                    try await self.renewMeasuringSkew(shared, lease)
                } catch {
                    logger.error("renewing the node's lease failed", metadata: ["node": "\(shared.node)", "error": "\(error)"])
                }
            }
        }
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        await finishForwardedActions()
        keeper.cancel()
        _ = await keeper.value
        do {
            // Also when the engine was cancelled: its runs are let go of either way.
            try await Task { try await shared.endLease() }.value
        } catch {
            logger.error("letting go of the node's runs failed; other nodes take them when its lease expires", metadata: ["error": "\(error)"])
        }
        return try result.get()
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
        do {
            try await shared.startListening { wake in
                if case .command = wake { commandsSignalled.raise() }
                doorbell.ring()
            }
        } catch {
            logger.error("listening for other nodes failed; polling instead", metadata: ["error": "\(error)"])
        }
        let limits = configuration.node
        var polled = true
        while !Task.isCancelled && !isDraining.load(ordering: .acquiring) {
            // Forwarded actions when a node announced one, and at every poll (an announcement may be missed).
            if commandsSignalled.take() || polled {
                await carryOutForwardedActions(shared)
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

    func carryOutForwardedActions(_ shared: any SharedRunStore) async {
        let commands: [NodeCommand]
        do {
            commands = try await shared.pendingCommands()
        } catch {
            logger.error("reading actions forwarded by other nodes failed", metadata: ["error": "\(error)"])
            return
        }
        for command in commands where commandsInProgress.withLock({ $0.insert(command.id).inserted }) {
            let task = Task {
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
                _ = self.forwardedTasks.withLock { $0.removeValue(forKey: command.id) }
            }
            forwardedTasks.withLock { tasks in
                if commandsInProgress.withLock({ $0.contains(command.id) }) { tasks[command.id] = task }
            }
        }
    }

    /// Waits for the forwarded actions this node took to be carried out and answered: a taken action is never
    /// dropped by a node that stops (its caller was told it is being carried out).
    func finishForwardedActions() async {
        // (Each task removes itself; one that finished before it was recorded is never recorded.) Cancelled, as past
        // the shutdown timeout, the actions are cancelled too.
        while !Task.isCancelled, let task = forwardedTasks.withLock({ $0.values.first }) {
            await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
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

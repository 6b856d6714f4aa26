import Foundation
import Logging
import SkaldCore
import Synchronization

/// This process's part in a database shared with other nodes (PostgreSQL): its lease (renewed by the injected
/// clock, measuring the clock's skew against the database's on the way), claiming runs while the engine has room,
/// listening for other nodes' signals, and carrying out the operator actions they forward. All of it runs as child
/// tasks of `withLease` and `claimWork`, inside the engine's `run()`, so nothing outlives the service.
///
/// The engine owns one when its store is a `SharedRunStore`; it holds no reference back, so the engine is passed to
/// the calls that hand it work.
final class NodeCoordinator: Sendable {
    let shared: any SharedRunStore
    let clock: any EngineClock
    let limits: NodeConfiguration
    let logger: Logger
    /// Rung when other nodes signal new runs or forwarded actions, and when the engine drains.
    let doorbell: Doorbell
    /// Set when another node announced a forwarded action for this one.
    let commandsSignalled = CommandSignal()
    /// Forwarded actions being carried out here, so a second wake-up does not start them twice.
    let commandsInProgress = Mutex<Set<Int64>>([])
    /// The last lease renewal that succeeded: when (by this node's clock), how far this node's clock was ahead of
    /// the database's (behind when negative), and how far off that measure may be (half the round trip), in seconds.
    let lastRenewal = Mutex<(at: Date, skew: Double, uncertainty: Double)?>(nil)

    init(shared: any SharedRunStore, clock: any EngineClock, limits: NodeConfiguration, logger: Logger) {
        self.shared = shared
        self.clock = clock
        self.limits = limits
        self.logger = logger
        self.doorbell = Doorbell(clock: clock)
    }

    // MARK: - The lease

    /// Runs `body` while this node holds its lease (renewed in a child task), then lets go of the runs it still
    /// owns so other nodes take them at once.
    func withLease<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let lease = limits.lease
        try await renewMeasuringSkew(lease)
        logger.info("node joined", metadata: ["node": "\(shared.node)", "lease": "\(DurationText.format(lease))"])
        // The keeper is a child task: it renews the lease every third of it (by the injected clock) until the body
        // (with the forwarded actions it took) is done, and is cancelled then.
        let result: Result<T, any Error> = await withTaskGroup(of: Void.self) { keeper in
            keeper.addTask { await self.keepLease(lease) }
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            keeper.cancelAll()
            return result
        }
        do {
            // Also when the engine was cancelled: its runs are let go of either way.
            // In a task of its own, awaited here, so that the engine's cancellation does not cancel it.
            let shared = shared
            try await Task { try await shared.endLease() }.value
        } catch {
            logger.error("letting go of the node's runs failed; other nodes take them when its lease expires", metadata: ["error": "\(error)"])
        }
        return try result.get()
    }

    /// Renews the node's lease every third of it until cancelled.
    private func keepLease(_ lease: Duration) async {
        while !Task.isCancelled {
            do {
                try await clock.sleep(until: clock.now().addingTimeInterval((lease / 3).seconds))
            } catch {
                return
            }
            do {
                try await renewMeasuringSkew(lease)
            } catch {
                logger.error("renewing the node's lease failed", metadata: ["node": "\(shared.node)", "error": "\(error)"])
            }
        }
    }

    /// Renews the lease and measures the skew: the node's clock at the midpoint of the round trip against the database's.
    /// The database read its clock somewhere in the round trip, so the measure is off by up to half of it (a first
    /// renewal that also opens a connection, or a loaded machine, makes that long): a node warns only when its clock is
    /// off by more than `Engine.maximumClockSkew` whatever that error.
    func renewMeasuringSkew(_ lease: Duration) async throws {
        let before = clock.now()
        let databaseNow = try await shared.renewLease(for: lease)
        let after = clock.now()
        let midpoint = before.addingTimeInterval(after.timeIntervalSince(before) / 2)
        let skew = midpoint.timeIntervalSince(databaseNow)
        let uncertainty = after.timeIntervalSince(before) / 2
        let wasFine = lastRenewal.withLock { last -> Bool in
            defer { last = (after, skew, uncertainty) }
            return last.map { !Self.isOff($0.skew, $0.uncertainty) } ?? true
        }
        if wasFine, let warning = clockWarning {
            logger.warning("\(warning)", metadata: ["node": "\(shared.node)", "skew_seconds": "\(skew)"])
        }
    }

    var skew: Double? { lastRenewal.withLock { $0?.skew } }

    /// Off by more than `Engine.maximumClockSkew` even at the measure's most favourable error.
    static func isOff(_ skew: Double, _ uncertainty: Double) -> Bool {
        abs(skew) - uncertainty > Engine.maximumClockSkew.seconds
    }

    /// Whether the node's lease holds at `now`: its last renewal succeeded less than a lease ago. Past that, other
    /// nodes may take its runs.
    func holdsLease(at now: Date) -> Bool {
        guard let renewed = lastRenewal.withLock({ $0?.at }) else { return false }
        return now < renewed.addingTimeInterval(limits.lease.seconds)
    }

    /// A warning for `/health` when the clock is off by more than `Engine.maximumClockSkew`.
    var clockWarning: String? {
        guard let (_, skew, uncertainty) = lastRenewal.withLock({ $0 }), Self.isOff(skew, uncertainty) else { return nil }
        return "this node's clock is \(String(format: "%.1f", abs(skew)))s \(skew > 0 ? "ahead of" : "behind") the database's: the retries and deadlines it schedules fire that much \(skew > 0 ? "early" : "late") on other nodes; fix its time synchronisation (NTP)"
    }

    // MARK: - Work

    /// The runs a one-shot `resume` drives: those this node holds, and every one no live node owns.
    func runsToResume(excluding definitions: [String]) async throws -> [StoredRun] {
        var runs = try await shared.runsHeldHere()
        while true {
            let claimed = try await shared.claimRuns(limit: 500, excluding: definitions, dueBy: .distantFuture)
            runs += claimed
            if claimed.count < 500 { return runs }
        }
    }

    /// Claims runs while `engine` has room, and carries out actions forwarded to this node, whenever another node
    /// signals and at least every poll interval, until the engine drains.
    func claimWork(for engine: Engine) async {
        let (shared, doorbell, commandsSignalled, logger) = (shared, doorbell, commandsSignalled, logger)
        // The actions taken from other nodes are child tasks of this group: when the node drains, the group waits for
        // them, so a taken action is never dropped by a node that stops (its caller was told it is being carried
        // out); when the engine is cancelled (past the shutdown timeout), they are cancelled with it.
        // Listening is a child task too, cancelled once the node stops claiming.
        await withTaskGroup(of: Void.self) { listening in
            listening.addTask {
                do {
                    try await shared.listen { wake in
                        switch wake {
                        case .work: doorbell.ring()
                        case .command:
                            commandsSignalled.raise()
                            doorbell.ring()
                        case .events(let runs): engine.notifier.wakeReaders(of: runs)
                        case .eventsMayBeMissed: engine.notifier.wakeAllReaders()
                        }
                    }
                } catch {
                    logger.error("listening for other nodes failed; polling instead", metadata: ["error": "\(error)"])
                }
            }
            await withDiscardingTaskGroup { actions in
                var polled = true
                while !Task.isCancelled && !engine.isDraining.load(ordering: .acquiring) {
                    // Forwarded actions when a node announced one, and at every poll (an announcement may be missed).
                    if commandsSignalled.take() || polled {
                        await carryOutForwardedActions(for: engine, in: &actions)
                    }
                    await claimRuns(for: engine)
                    polled = !(await doorbell.wait(upTo: limits.pollInterval))
                }
            }
            listening.cancelAll()
        }
    }

    /// Claims runs in batches while the engine has room for them, and hands them to it.
    private func claimRuns(for engine: Engine) async {
        while !engine.isDraining.load(ordering: .acquiring) {
            let room = limits.maxRuns - engine.runs.heldCount
            guard room > 0 else { return }
            let limit = min(room, NodeConfiguration.claimBatch)
            let runs: [StoredRun]
            do {
                runs = try await shared.claimRuns(
                    limit: limit, excluding: engine.definitionsItCannotRun,
                    dueBy: engine.clock.now().addingTimeInterval(engine.configuration.parking.after.seconds))
            } catch {
                logger.error("claiming runs failed", metadata: ["error": "\(error)"])
                return
            }
            for run in runs {
                logger.debug("run claimed", metadata: ["run_id": "\(run.id)", "node": "\(shared.node)"])
                engine.submissions.send(Submission(runID: run.id, fresh: nil, stored: run))
            }
            if runs.count < limit { return }
        }
    }

    /// Takes the actions other nodes forwarded to this one, each carried out by `engine` and answered in a child
    /// task of `actions`.
    private func carryOutForwardedActions(for engine: Engine, in actions: inout DiscardingTaskGroup) async {
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
                    _ = try await engine.operate(command.runID, command.action, forwarded: true)
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
                    try await self.shared.answer(command.id, with: answer)
                } catch {
                    self.logger.error("answering a forwarded action failed", metadata: ["run_id": "\(command.runID)", "error": "\(error)"])
                }
                self.commandsInProgress.withLock { _ = $0.remove(command.id) }
            }
        }
    }
}

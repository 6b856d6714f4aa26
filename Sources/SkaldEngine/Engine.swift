import Foundation
import Logging
import ServiceLifecycle
import SkaldCore
import Synchronization

/// How an engine behaves; every field has a default.
public struct EngineConfiguration: Sendable {
    /// What `{{env.NAME}}` reads: only the variables the operator allows (by default every variable but
    /// Skald's own `SKALD_*`). Values are read when a call is rendered and never stored.
    public var environment: [String: String]
    /// A number in `0...1` for jitter; injected so tests can fix it.
    public var jitterSample: @Sendable () -> Double
    /// Called after each transition is committed, with the run and its events, in order.
    public var onEvents: (@Sendable (_ run: PublishedRun, _ events: [RunEvent]) -> Void)?
    /// The most attempts in flight at once, across all runs.
    public var concurrency: Int
    /// How the engine shares its database with other nodes; used only with a `SharedRunStore`.
    public var node: NodeConfiguration
    /// Where the engine's counters and timings go (nowhere by default).
    public var metrics: EngineMetrics
    /// The server-wide participants (`skald serve --participants FILE`): shared by every saga, and matched by
    /// `baseUrl` for steps that name no participant.
    public var participants: [String: ParticipantSettings]
    /// Seals the `writeOnly` fields of run inputs in the store (`--data-key`); nil stores them as given.
    public var dataKey: DataKey?
    /// When a served run with nothing under way is put away until it is due (see `ParkingPolicy`).
    public var parking: ParkingPolicy
    /// The server's address as participants reach it (`serve --public-url`), for callback URLs; a server that is not
    /// given one sets the address it listens on once it listens (`Engine.setPublicURL`).
    public var publicURL: String?

    public init(
        environment: [String: String] = EnvironmentPolicy.allButReserved.filter(ProcessInfo.processInfo.environment),
        jitterSample: @escaping @Sendable () -> Double = { Double.random(in: 0...1) },
        concurrency: Int = 256,
        node: NodeConfiguration = NodeConfiguration(),
        metrics: EngineMetrics = EngineMetrics(),
        participants: [String: ParticipantSettings] = [:],
        dataKey: DataKey? = nil,
        parking: ParkingPolicy = ParkingPolicy(),
        publicURL: String? = nil,
        onEvents: (@Sendable (PublishedRun, [RunEvent]) -> Void)? = nil
    ) {
        self.parking = parking
        self.publicURL = publicURL
        self.dataKey = dataKey
        self.metrics = metrics
        self.participants = participants
        self.environment = environment
        self.jitterSample = jitterSample
        self.concurrency = concurrency
        self.node = node
        self.onEvents = onEvents
    }
}

/// Starts runs and drives them to a terminal state, storing every transition before acting on it.
///
/// Used two ways: `drive(runID:)` / `resumeUnfinished()` for one-shot commands, or as a `Service` (`run()`),
/// which resumes unfinished runs, drives every run started while it runs, and drains on graceful shutdown.
public final class Engine: Service, Sendable {
    let store: any SagaStore
    /// The store as shared with other nodes (PostgreSQL), when it is: runs are then claimed, not just loaded.
    let shared: (any SharedRunStore)?
    let executor: any StepExecutor
    let clock: any EngineClock
    let configuration: EngineConfiguration
    let logger: Logger
    let limiter: AttemptLimiter
    /// Each participant's circuit breaker, bulkhead and rate limit, in memory.
    public let participants: ParticipantRegistry
    /// Steps held back by a participant now, by run and step: what `skald status` shows as "waiting".
    let participantWaits = Mutex<[String: [String: ParticipantWait]]>([:])
    public let notifier: EventNotifier
    let machines = Mutex<[String: SagaMachine]>([:])
    /// Stored runs found undrivable, so each is reported once per process.
    let unrunnableRuns = Mutex<Set<String>>([])
    /// Sagas (by definition hash) whose runs this node cannot build: its environment lacks what they read.
    let sagasItCannotRun = Mutex<[String: SagaThisNodeCannotRun]>([:])
    /// Runs started here wait in this queue until `run()` drives them (one-shot commands drive them directly).
    let submissions = Mailbox<Submission>()
    /// The runs held here (so no run is ever driven twice at once) and their drivers' mailboxes.
    let runs = RunRegistry()
    let isDraining = Atomic<Bool>(false)
    /// Whether `run()` is taking submissions (an operator's action hands a run over to it only then).
    let isServing = Atomic<Bool>(false)
    /// Attempts cancelled in flight (shutdown past its timeout, or a failed store): nothing was stored for them.
    public let abandonedAttempts = Atomic<Int>(0)
    /// Since when storing runs' transitions has been failing (nil while it works).
    let storeFailingSince = Mutex<StoreTrouble?>(nil)
    /// Whether `storeFailingSince` is set, read without the lock on every successful write.
    let storeIsFailing = Atomic<Bool>(false)
    /// This process as a node of a shared store (PostgreSQL): its lease, claims and forwarded actions.
    let node: NodeCoordinator?
    /// The base of callback URLs (`configuration.publicURL`, or the address the server listens on), and who waits
    /// for it to be known.
    let publicURLValue: Mutex<(url: String?, waiters: [CheckedContinuation<String, Never>])>

    public init(
        store: any SagaStore, executor: any StepExecutor, clock: any EngineClock = SystemClock(),
        configuration: EngineConfiguration = EngineConfiguration(), logger: Logger = Logger(label: "skald.engine")
    ) {
        self.store = store
        self.shared = store as? any SharedRunStore
        self.executor = executor
        self.clock = clock
        self.notifier = EventNotifier(clock: clock)
        self.node = shared.map { NodeCoordinator(shared: $0, clock: clock, limits: configuration.node, logger: logger) }
        self.configuration = configuration
        self.publicURLValue = Mutex((configuration.publicURL, []))
        self.logger = logger
        self.limiter = AttemptLimiter(limit: configuration.concurrency)
        self.participants = ParticipantRegistry(serverWide: configuration.participants, clock: clock, metrics: configuration.metrics)
    }

    // MARK: - Participants

    /// The steps of a run driven here that a participant holds back now, by step name.
    public func participantWaits(runID: String) -> [String: ParticipantWait] {
        participantWaits.withLock { $0[runID] ?? [:] }
    }

    func noteParticipantWait(runID: String, step: String, _ wait: ParticipantWait?) {
        participantWaits.withLock { waits in
            if let wait {
                waits[runID, default: [:]][step] = wait
            } else if waits[runID]?.removeValue(forKey: step) != nil, waits[runID]?.isEmpty == true {
                waits[runID] = nil
            }
        }
    }

    func forgetParticipantWaits(runID: String) {
        participantWaits.withLock { _ = $0.removeValue(forKey: runID) }
    }

    // MARK: - Starting

    /// Checks the input, then stores the definition and the new run in one transaction.
    /// When serving, the run is driven at once.
    /// - Throws: `InputError` when the input or the environment does not satisfy the saga.
    @discardableResult
    public func startRun(_ definition: SagaDefinition, input: JSONValue, id: String? = nil) async throws -> String {
        try await start(definition, input: input, id: id, idempotencyKey: nil).runID
    }

    /// - Parameters:
    ///   - trace: the caller's trace, which the run continues; nil starts a trace of its own.
    ///   - sameVersion: a run that holds `idempotencyKey` already must be of this very version of the saga (the
    ///     caller named one); otherwise any version of it will do.
    /// - Throws: `EngineError` `.conflict` when the key belongs to a run of another saga, version or input: a client
    ///   that reuses a key for a different request hears so, instead of getting the old run back.
    public func start(
        _ definition: SagaDefinition, input: JSONValue, id: String? = nil, idempotencyKey: String?, trace: RunTrace? = nil,
        sameVersion: Bool = true
    ) async throws -> StartedRun {
        let trace = trace ?? RunTrace.new()
        let machine = machine(for: definition)
        // The run keeps its input with the schema's defaults filled in, so its calls and its history show them.
        let input = definition.inputSchema?.withDefaults(input) ?? input
        try machine.checkStart(input: input, environment: configuration.environment)
        let now = clock.now()
        let runID = id ?? RunID.make(at: now)
        let transition = machine.start(runID: runID, at: now)
        // A node serving a shared database leaves a new run to whichever node claims it first, so runs started
        // through one node's API spread over all of them.
        let spread = shared != nil && isServing.load(ordering: .acquiring)
        // The driver's mailbox exists before the run does, so an operator's cancel that arrives at once goes
        // through the driver instead of racing it.
        _ = register(runID)
        let created: CreatedRun
        let stored = try inputToStore(input, machine)
        do {
            created = try await store.createRun(
                NewRun(
                    id: runID, definition: definition, input: stored, createdAt: now, idempotencyKey: idempotencyKey,
                    ownedByCreator: !spread, trace: trace),
                transition: transition)
        } catch {
            unregister(runID)
            throw error
        }
        if case .existing(let run) = created {
            unregister(runID)
            if let conflict = reusedKey(idempotencyKey ?? "", run: run, definition: definition, input: input, sameVersion: sameVersion) {
                throw EngineError(code: .conflict, message: conflict)
            }
            return StartedRun(runID: run.id, isNew: false, run: run)
        }
        logger.debug("run started", metadata: ["run_id": "\(runID)", "saga": "\(definition.name)", "trace_id": "\(trace.traceID)"])
        let run = StoredRun(
            id: runID, sagaName: definition.name, sagaVersion: definition.version, definitionHash: definition.contentHash,
            definitionDocument: definition.document, input: stored, createdAt: now, updatedAt: now, state: transition.state,
            idempotencyKey: idempotencyKey, trace: trace)
        publish(runID, transition, saga: definition.name, startedAt: now, trace: trace)
        if spread {
            unregister(runID)
            return StartedRun(runID: runID, isNew: true, run: run)
        }
        // The driver starts from the state just stored, without reading it back.
        // Created owned by this node, as claim 0 of it.
        submissions.send(
            Submission(
                runID: runID,
                fresh: FreshRun(machine: machine, input: input, state: transition.state, startedAt: now, trace: trace, epoch: shared == nil ? nil : 0)))
        return StartedRun(runID: runID, isNew: true, run: run)
    }

    // MARK: - One-shot driving

    /// Drives a stored run until it reaches a terminal state, and returns that state.
    @discardableResult
    public func drive(runID: String) async throws -> RunState {
        guard claim(runID) else { throw EngineError(code: .conflict, message: "run \(runID) is already being driven") }
        let mailbox = register(runID)
        defer { release(runID) }
        return try await drive(runID: runID, mailbox: mailbox)
    }

    /// Drives every unfinished run concurrently until each is terminal.
    /// Returns the final state of each run; runs that could not be driven are reported through `onError`.
    ///
    /// On a shared store, the runs no live node owns; runs another node holds are claimed if its lease lapses
    /// within one lease from now (a killed `skald run` or `serve` holds its runs until then), else left to it.
    public func resumeUnfinished(onError: @escaping @Sendable (String, any Error) -> Void = { _, _ in }) async throws
        -> [String: RunState]
    {
        // Driven to their end here, parked runs too (a one-shot command parks nothing: it waits in memory).
        if shared == nil { _ = try await store.unparkRuns(dueBy: .distantFuture, limit: .max) }
        let runs = try await runsToResume()
        return await withTaskGroup(of: (String, RunState?).self) { group in
            func launch(_ runs: [StoredRun]) {
                for run in runs where claim(run.id) {
                    let mailbox = register(run.id)
                    group.addTask {
                        defer { self.release(run.id) }
                        do {
                            return (run.id, try await self.drive(run, mailbox: mailbox))
                        } catch {
                            onError(run.id, error)
                            return (run.id, nil)
                        }
                    }
                }
            }
            launch(runs)
            if let shared {
                let limits = configuration.node
                let until = clock.now().addingTimeInterval((limits.lease + limits.pollInterval).seconds)
                while clock.now() < until, (try? await shared.runsHeldElsewhere()) ?? 0 > 0 {
                    try? await clock.sleep(until: clock.now().addingTimeInterval(limits.pollInterval.seconds))
                    launch((try? await runsToResume()) ?? [])
                }
            }
            var results: [String: RunState] = [:]
            for await (id, state) in group {
                if let state { results[id] = state }
            }
            return results
        }
    }

    // MARK: - Service

    /// Resumes every unfinished run, then drives each run started while serving. On graceful shutdown it
    /// stops starting attempts, lets those in flight finish and stores their outcomes, then returns.
    public func run() async throws {
        isServing.store(true, ordering: .releasing)
        defer { isServing.store(false, ordering: .releasing) }
        try await withLease {
            // A shared store's runs are claimed as the node has room for them, not all loaded at once.
            let unfinished = shared == nil ? try await store.unfinishedRuns() : []
            if !unfinished.isEmpty { logger.info("resuming unfinished runs", metadata: ["count": "\(unfinished.count)"]) }
            await withTaskGroup(of: Void.self) { background in
                if let node {
                    background.addTask { await node.claimWork(for: self) }
                } else {
                    background.addTask { await self.wakeParkedRuns() }
                }
                await serve(unfinished)
                // Drained: the node stops claiming once it wakes, after the actions it took are carried out; alone on
                // its store, the engine stops looking for parked runs at once.
                node?.doorbell.ring()
                if node == nil { background.cancelAll() }
            }
        }
    }

    func serve(_ unfinished: [StoredRun]) async {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for run in unfinished where claim(run.id) {
                    let mailbox = register(run.id)
                    group.addTask { await self.driveLogged(run.id, mailbox: mailbox, source: .stored(run)) }
                }
                while !isDraining.load(ordering: .acquiring), let submission = await submissions.next() {
                    let runID = submission.runID
                    // A run started just before the unfinished ones were loaded is already being driven.
                    guard submission.claimed || claim(runID) else { continue }
                    let mailbox = register(runID)
                    let source: RunSource = submission.stored.map { .stored($0) } ?? submission.fresh.map { .fresh($0) } ?? .load
                    group.addTask { await self.driveLogged(runID, mailbox: mailbox, source: source) }
                }
                // Cancelled rather than shut down gracefully: drain all the same.
                drain()
                // Runs an operator's action handed over that no driver took: let go of them.
                for submission in submissions.drainRemaining() where submission.claimed {
                    release(submission.runID)
                }
            }
        } onGracefulShutdown: {
            self.drain()
        }
    }

    func claim(_ runID: String) -> Bool {
        runs.hold(runID)
    }

    // MARK: - Internals

    func register(_ runID: String) -> Mailbox<DriverCommand> {
        runs.mailbox(for: runID)
    }

    /// The run's driver will not run here: drops its mailbox (the run was not held).
    func unregister(_ runID: String) {
        closed(runs.dropMailbox(runID), runID)
    }

    /// Lets go of a run held here: its hold and its driver's mailbox.
    func release(_ runID: String) {
        closed(runs.release(runID), runID)
    }

    private func closed(_ mailbox: Mailbox<DriverCommand>?, _ runID: String) {
        // Not driven here any more: whatever it publishes next is published by the node (or driver) that drives it.
        notifier.forget(runID)
        // Answer anything sent after the driver stopped listening, so no caller waits forever.
        mailbox?.close()
        for command in mailbox?.drainRemaining() ?? [] {
            if case .operate(_, let continuation, _) = command { continuation.resume(throwing: DriverGone()) }
        }
    }

    func drive(runID: String, mailbox: Mailbox<DriverCommand>) async throws -> RunState {
        let stored: StoredRun?
        do {
            if let shared {
                // Driven again after a failed write, or set going by an operator: only while no other node has it.
                switch try await shared.claimRun(id: runID) {
                case .claimed(let run): stored = run
                case .notFound: stored = nil
                case .ownedBy(let node): throw RunOwnershipLost(runID: runID, owner: node)
                }
            } else {
                stored = try await store.run(id: runID)
            }
        } catch let error as RunOwnershipLost {
            throw error
        } catch {
            throw RunStoreFailure(runID: runID, underlying: error)
        }
        guard let run = stored else { throw StoreError.unknownRun(runID) }
        return try await drive(run, mailbox: mailbox)
    }

    func drive(_ run: StoredRun, mailbox: Mailbox<DriverCommand>) async throws -> RunState {
        let machine: SagaMachine
        do {
            machine = try self.machine(for: run)
        } catch let error as UnrunnableRunError {
            await RunFence.$epoch.withValue(run.claimEpoch) { await markUnrunnable(run, error) }
            throw error
        }
        if run.state.status.isTerminal { return run.state }
        let input = try await inputToRun(run, machine)
        return try await drive(
            run.id,
            FreshRun(machine: machine, input: input, state: run.state, startedAt: run.createdAt, trace: run.trace, epoch: run.claimEpoch),
            mailbox: mailbox)
    }

    func drive(_ runID: String, _ run: FreshRun, mailbox: Mailbox<DriverCommand>) async throws -> RunState {
        var driver = RunDriver(
            engine: self, machine: run.machine, runID: runID, input: run.input, state: run.state, startedAt: run.startedAt, trace: run.trace,
            mailbox: mailbox)
        // Every write the driver makes is fenced on the claim it drives the run by.
        return try await RunFence.$epoch.withValue(run.epoch) { try await driver.run() }
    }

    /// How many definitions' machines are kept; past this, one is forgotten for each new one (and rebuilt
    /// from the stored document when needed again).
    static let machineCacheLimit = 512

    func machine(for definition: SagaDefinition) -> SagaMachine {
        let hash = definition.contentHash
        if let machine = machines.withLock({ $0[hash] }) { return machine }
        // Built outside the lock: a large definition must not hold up every other run.
        let machine = SagaMachine(saga: definition)
        return machines.withLock { cache in
            if let existing = cache[hash] { return existing }
            if cache.count >= Self.machineCacheLimit, let victim = cache.keys.randomElement() { cache.removeValue(forKey: victim) }
            cache[hash] = machine
            return machine
        }
    }

    /// The run's input as it may be shown: fields its saga's `inputSchema` marks `writeOnly` are `***`.
    public func shownInput(of run: StoredRun) -> JSONValue {
        guard let schema = (try? machine(for: run, checkingState: false))?.saga.inputSchema else { return run.input }
        return schema.masking(run.input)
    }

    /// A registered definition, validated once per content hash rather than on every start.
    /// - Throws: `DefinitionError` when the stored document no longer validates (a newer Skald registered it, say).
    public func definition(_ stored: StoredDefinition) throws(DefinitionError) -> SagaDefinition {
        if let machine = machines.withLock({ $0[stored.hash] }) { return machine.saga }
        let definition = try DefinitionParser.parse(stored.document)
        return machine(for: definition).saga
    }

    /// The run's machine, once its stored state is checked against the machine's rules (`checkingState`; an
    /// abandon, which sends nothing, needs only the definition).
    /// - Throws: `UnrunnableRunError` when the definition does not validate or the state breaks a rule.
    func machine(for run: StoredRun, checkingState: Bool = true) throws -> SagaMachine {
        let machine: SagaMachine
        if let cached = machines.withLock({ $0[run.definitionHash] }) {
            machine = cached
        } else {
            do {
                machine = self.machine(for: try DefinitionParser.parse(run.definitionDocument))
            } catch {
                throw UnrunnableRunError(runID: run.id, problems: error.problems.map(\.description))
            }
        }
        // The machine indexes steps by position and traps on a state it could never have written: a stored row
        // that breaks its rules is refused here, before anything acts on it.
        // Runs an action can set going again are checked too: a compensation_failed run is retried.
        let mayMoveOn = !run.state.status.isTerminal || run.state.status == .compensationFailed
        if checkingState && (run.state.steps.map(\.name) != machine.saga.steps.map(\.name) || mayMoveOn) {
            let problems = machine.problems(in: run.state)
            if !problems.isEmpty {
                throw UnrunnableRunError(runID: run.id, problems: problems.map(\.description), canBeAbandoned: true)
            }
        }
        return machine
    }

    /// Why the engine cannot drive this stored run, or nil when it can.
    public func unrunnable(_ run: StoredRun) -> UnrunnableRunError? {
        do {
            _ = try machine(for: run)
            return nil
        } catch let error as UnrunnableRunError {
            return error
        } catch {
            return UnrunnableRunError(runID: run.id, problems: ["\(error)"])
        }
    }

    /// After a transition is committed: wakes whoever follows the run, and counts it.
    func publish(_ runID: String, _ transition: SagaMachine.Transition, saga: String, startedAt: Date?, trace: RunTrace?) {
        let events = transition.events
        guard !events.isEmpty else { return }
        configuration.metrics.observe(saga: saga, startedAt: startedAt, state: transition.state, events: events)
        notifier.notify(runID, finished: transition.state.status.isTerminal)
        configuration.onEvents?(PublishedRun(id: runID, saga: saga, traceID: trace?.traceID), events)
    }
}

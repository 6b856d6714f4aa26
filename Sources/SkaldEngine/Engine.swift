import Foundation
import Logging
import SkaldCore
import Synchronization

/// How an engine behaves; every field has a default.
public struct EngineConfiguration: Sendable {
    /// What `{{env.NAME}}` reads. Values are read when a call is rendered and never stored.
    public var environment: [String: String]
    /// A number in `0...1` for jitter; injected so tests can fix it.
    public var jitterSample: @Sendable () -> Double
    /// Called after each transition is committed, with the run id and its events, in order.
    public var onEvents: (@Sendable (_ runID: String, _ events: [RunEvent]) -> Void)?

    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        jitterSample: @escaping @Sendable () -> Double = { Double.random(in: 0...1) },
        onEvents: (@Sendable (String, [RunEvent]) -> Void)? = nil
    ) {
        self.environment = environment
        self.jitterSample = jitterSample
        self.onEvents = onEvents
    }
}

/// A stored run whose definition no longer validates, so the engine cannot drive it.
public struct UnrunnableRunError: Error, Sendable, CustomStringConvertible {
    public var runID: String
    public var problems: [String]

    public var description: String {
        "run \(runID) cannot continue: its stored definition does not validate: \(problems.joined(separator: "; "))"
    }
}

/// Starts runs and drives them to a terminal state, storing every transition before acting on it.
public final class Engine: Sendable {
    let store: any SagaStore
    let executor: any StepExecutor
    let clock: any EngineClock
    let configuration: EngineConfiguration
    let logger: Logger
    private let machines = Mutex<[String: SagaMachine]>([:])

    public init(
        store: any SagaStore, executor: any StepExecutor, clock: any EngineClock = SystemClock(),
        configuration: EngineConfiguration = EngineConfiguration(), logger: Logger = Logger(label: "skald.engine")
    ) {
        self.store = store
        self.executor = executor
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
    }

    /// Checks the input, then stores the definition and the new run in one transaction.
    /// - Throws: `InputError` when the input or the environment does not satisfy the saga.
    @discardableResult
    public func startRun(_ definition: SagaDefinition, input: JSONValue, id: String? = nil) async throws -> String {
        try definition.checkStart(input: input, environment: configuration.environment)
        let now = clock.now()
        let runID = id ?? RunID.make(at: now)
        let machine = machine(for: definition)
        let transition = machine.start(runID: runID, at: now)
        try await store.createRun(NewRun(id: runID, definition: definition, input: input, createdAt: now), transition: transition)
        logger.debug("run started", metadata: ["saga.run_id": "\(runID)", "saga.name": "\(definition.name)"])
        publish(runID, transition.events)
        return runID
    }

    /// Drives a stored run until it reaches a terminal state, and returns that state.
    @discardableResult
    public func drive(runID: String) async throws -> RunState {
        guard let run = try await store.run(id: runID) else { throw StoreError.unknownRun(runID) }
        return try await drive(run)
    }

    /// Drives every unfinished run concurrently until each is terminal.
    /// Returns the final state of each run; runs that could not be driven are reported through `onError`.
    public func resumeUnfinished(onError: @escaping @Sendable (String, any Error) -> Void = { _, _ in }) async throws
        -> [String: RunState]
    {
        let runs = try await store.unfinishedRuns()
        return await withTaskGroup(of: (String, RunState?).self) { group in
            for run in runs {
                group.addTask {
                    do {
                        return (run.id, try await self.drive(run))
                    } catch {
                        onError(run.id, error)
                        return (run.id, nil)
                    }
                }
            }
            var results: [String: RunState] = [:]
            for await (id, state) in group {
                if let state { results[id] = state }
            }
            return results
        }
    }

    func drive(_ run: StoredRun) async throws -> RunState {
        let machine = try machine(for: run)
        if run.state.status.isTerminal { return run.state }
        var driver = RunDriver(engine: self, machine: machine, runID: run.id, input: run.input, state: run.state)
        return try await driver.run()
    }

    func machine(for definition: SagaDefinition) -> SagaMachine {
        let hash = definition.contentHash
        return machines.withLock { cache in
            if let machine = cache[hash] { return machine }
            let machine = SagaMachine(saga: definition)
            cache[hash] = machine
            return machine
        }
    }

    func machine(for run: StoredRun) throws -> SagaMachine {
        if let machine = machines.withLock({ $0[run.definitionHash] }) { return machine }
        do {
            let definition = try DefinitionParser.parse(run.definitionDocument)
            return machine(for: definition)
        } catch {
            throw UnrunnableRunError(runID: run.id, problems: error.problems.map(\.description))
        }
    }

    func publish(_ runID: String, _ events: [RunEvent]) {
        guard !events.isEmpty else { return }
        configuration.onEvents?(runID, events)
    }
}

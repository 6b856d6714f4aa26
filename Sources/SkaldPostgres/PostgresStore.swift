import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import _ConnectionPoolModule
import SkaldCore
import SkaldEngine

/// Where a PostgreSQL database is: parsed from `postgres://user:password@host:port/database`. The password is never
/// shown: `description` masks it.
public struct PostgresLocation: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    var password: String?
    public var database: String

    /// Whether `text` is meant as a PostgreSQL URL rather than a SQLite file path.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// - Throws: `PostgresStoreError` saying what is missing, with the password masked.
    public init(url: String) throws {
        guard Self.isURL(url), let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw PostgresStoreError(
                message: "\(Self.masking(url)) is not a PostgreSQL URL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let user = components.user, !user.isEmpty else {
            throw PostgresStoreError(message: "\(Self.masking(url)) names no user; write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else {
            throw PostgresStoreError(message: "\(Self.masking(url)) names no database; end it with /DATABASE")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.user = user
        self.password = components.password
        self.database = database
    }

    public var description: String { "postgres://\(user)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)" }

    /// The URL with whatever stands between `://user:` and `@` replaced by `***`.
    static func masking(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", options: .backwards),
            let colon = url[scheme.upperBound..<at.lowerBound].firstIndex(of: ":")
        else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at.lowerBound...])
    }

    var connectionConfiguration: PostgresConnection.Configuration {
        PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
    }

    var clientConfiguration: PostgresClient.Configuration {
        PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
    }
}

/// The PostgreSQL store: the same tables and transitions as the SQLite store, one transaction per state change,
/// committed before the engine acts on it.
///
/// Several processes share one database as *nodes* (`SharedRunStore`): each store is a node with its own id; a run's
/// `owner` is the node that drives it, and every write of a run's progress is fenced on it.
///
/// Its connection pool runs as long as the store is used, started by whoever `PoolRunner` names: the store itself
/// (from `open` to `shutdown()`), or the caller, which runs the store as a `Service` (or calls `serve()`) in its
/// `ServiceGroup`, listed before the services that use it so that a graceful shutdown reaches the pool after them.
/// `SkaldService` does so for the database it is given.
public final class PostgresStore: SharedRunStore, Service {
    public let location: PostgresLocation
    public let node: String
    let client: PostgresClient
    let logger: Logger
    let metrics: StoreMetrics
    /// The pool's task when the store runs it itself (`PoolRunner.store`).
    private let runner: Task<Void, Never>?
    /// Opened once the pool runs: a query waits for it, so none is asked of a pool that has not started.
    let poolRunning = PoolGate()
    /// Stores the transitions runs write at the same moment in one statement (group commit).
    let transitionBatcher: StatementBatcher
    /// Stores the runs started at the same moment in one statement.
    let creationBatcher: StatementBatcher

    /// Who runs the store's connection pool.
    public enum PoolRunner: Sendable {
        /// The store, from `open` until `shutdown()`: for a command or a test that opens a database, uses it and
        /// closes it.
        case store
        /// The caller: `run()` (as a `Service`) or `serve()` runs the pool; queries wait until it does.
        case caller
    }

    /// A node id nobody else has: the host, the process and a random part.
    public static func newNodeID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        return "\(host)-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
    }

    /// Connects, checks the schema (refusing a database written by a newer Skald) and migrates it.
    /// - Parameters:
    ///   - maximumConnections: the pool's size; match the engine's concurrency of writes.
    ///   - node: this process's node id among those sharing the database.
    public static func open(
        _ location: PostgresLocation, maximumConnections: Int = 20, node: String = newNodeID(), logger: Logger = Logger(label: "skald.postgres"),
        metrics: StoreMetrics = StoreMetrics(), pool: PoolRunner = .store
    ) async throws -> PostgresStore {
        // One direct connection first: a wrong password or an unreachable server is reported at once and plainly
        // (the pool would keep retrying for a minute), and the schema is migrated on it.
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: location.connectionConfiguration, id: 0, logger: logger)
        } catch {
            throw PostgresStoreError(message: "cannot connect to \(location): \(Self.describe(error)). Check that the server runs and the URL's user, password and database.")
        }
        do {
            try await migrate(connection, location: location, logger: logger)
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
        var configuration = location.clientConfiguration
        configuration.options.maximumConnections = max(2, maximumConnections)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return PostgresStore(location: location, node: node, client: client, logger: logger, metrics: metrics, pool: pool)
    }

    init(
        location: PostgresLocation, node: String, client: PostgresClient, logger: Logger, metrics: StoreMetrics = StoreMetrics(),
        pool: PoolRunner = .store
    ) {
        self.metrics = metrics
        self.location = location
        self.node = node
        self.client = client
        self.logger = logger
        transitionBatcher = StatementBatcher(metrics: metrics) { [poolRunning] entries in
            let statement = TransitionBatchStatement(transitions: JSONValue.array(entries.map(JSONValue.object)).jsonText, owner: node)
            return try await Self.send(statement, client: client, pool: poolRunning, location: location, logger: logger)
        }
        creationBatcher = StatementBatcher(metrics: metrics) { [poolRunning] entries in
            let statement = CreateRunsStatement(runs: CreateRunStatement.batch(entries))
            return try await Self.send(statement, client: client, pool: poolRunning, location: location, logger: logger)
        }
        switch pool {
        case .store:
            runner = Task { [poolRunning] in
                poolRunning.open()
                await client.run()
            }
        case .caller:
            runner = nil
        }
    }

    /// Runs the connection pool until the task is cancelled or sees a graceful shutdown, when the caller runs it
    /// (`PoolRunner.caller`); returns at once when the store runs it itself. Call it once.
    public func serve() async {
        guard runner == nil else { return }
        poolRunning.open()
        await client.run()
    }

    /// As a `Service`: runs the pool (`PoolRunner.caller`) until graceful shutdown. In a `ServiceGroup`, list it before
    /// the services that use it: the group stops them first.
    public func run() async throws {
        await serve()
        // Nothing to run (the store runs its pool): a service that returned would stop the group.
        try? await gracefulShutdown()
    }

    /// Closes the pool's connections when the store runs it. The store cannot be used afterwards.
    public func shutdown() async {
        runner?.cancel()
        await runner?.value
    }

    static func migrate(_ connection: PostgresConnection, location: PostgresLocation, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { db in
            // Two processes starting at once migrate one after the other.
            try await db.query("SELECT pg_advisory_xact_lock(7100700)", logger: logger)
            try await db.query(
                "CREATE TABLE IF NOT EXISTS skald_migration (identifier TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger)
            var applied: Set<String> = []
            for try await identifier in try await db.query("SELECT identifier FROM skald_migration", logger: logger).decode(String.self) {
                applied.insert(identifier)
            }
            let known = Set(PostgresSchema.migrations.map(\.identifier))
            let unknown = applied.subtracting(known).sorted()
            guard unknown.isEmpty else {
                throw PostgresStoreError(
                    message: "the database \(location) was written by a newer version of Skald (it has schema migrations this version does not know: \(unknown.joined(separator: ", "))). Upgrade skald, or pass --db with another database. Nothing was changed.")
            }
            for migration in PostgresSchema.migrations where !applied.contains(migration.identifier) {
                for statement in migration.statements {
                    try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await db.query("INSERT INTO skald_migration (identifier) VALUES (\(migration.identifier))", logger: logger)
            }
        }
    }

    /// Runs one SQL statement of the operator's (or a test's) in its own transaction.
    public func execute(_ sql: String) async throws {
        let logger = logger
        try await transaction { db in _ = try await db.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
    }

    // MARK: - Definitions

    public func registerDefinition(_ definition: SagaDefinition, at: Date) async throws -> Registration {
        let logger = logger
        let (hash, name, version, text, time) = (
            definition.contentHash, definition.name, definition.version, definition.documentText, at.timeIntervalSince1970
        )
        do {
            return try await transaction { db in
                let existing = try await db.query(
                    "SELECT hash FROM definition WHERE name = \(name) AND version = \(version) AND registered", logger: logger
                ).collect().first.map { try $0.decode(String.self) }
                if let existing { return existing == hash ? .alreadyRegistered : .conflict(existingHash: existing) }
                try await db.query(
                    """
                    INSERT INTO definition (hash, name, version, document, created_at, registered)
                    VALUES (\(hash), \(name), \(version), \(text), \(time), true)
                    ON CONFLICT (hash) DO UPDATE SET registered = true
                    """, logger: logger)
                return .registered
            }
        } catch let error as StoreError where error.kind == .uniqueViolation {
            // Another process registered the same name and version at the same moment: answer as if it came first.
            return try await registerDefinition(definition, at: at)
        }
    }

    public func definitions() async throws -> [StoredDefinition] {
        let logger = logger
        return try await reading { db in
            try await db.query("SELECT hash, name, version, document, created_at FROM definition WHERE registered ORDER BY name, version", logger: logger)
                .collect().map { try PostgresRowDecoder.decode(DefinitionRow.self, from: $0).definition() }
        }
    }

    public func definition(name: String, version: Int?) async throws -> StoredDefinition? {
        let logger = logger
        return try await reading { db in
            let rows: [PostgresRow]
            if let version {
                rows = try await db.query(
                    "SELECT hash, name, version, document, created_at FROM definition WHERE registered AND name = \(name) AND version = \(version)",
                    logger: logger
                ).collect()
            } else {
                rows = try await db.query(
                    "SELECT hash, name, version, document, created_at FROM definition WHERE registered AND name = \(name) ORDER BY version DESC LIMIT 1",
                    logger: logger
                ).collect()
            }
            return try rows.first.map { try PostgresRowDecoder.decode(DefinitionRow.self, from: $0).definition() }
        }
    }

    // MARK: - Run writes

    public func createRun(_ run: NewRun, transition: SagaMachine.Transition) async throws -> CreatedRun {
        let logger = logger
        let owner = run.ownedByCreator ? node : nil
        // Stored with the runs started at the same moment; one refused (its key is taken) is written again alone.
        let entry = CreateRunStatement.entry(run, state: transition.state, events: transition.events, owner: owner)
        if try await creationBatcher.submit(runID: run.id, entry: entry) == .applied { return .created }
        // Alone: the same statement with one run, so a refusal the batch hid (a duplicate id) is raised as itself.
        var alone = entry
        alone["n"] = .int(0)
        let statement = CreateRunsStatement(runs: CreateRunStatement.batch([alone]))
        if try await Self.send(statement, client: client, pool: poolRunning, location: location, logger: logger).contains(0) { return .created }
        guard let key = run.idempotencyKey else {
            throw StoreError(.unreadableRow, "run \(run.id) was not stored, and it has no idempotency key that another run could hold")
        }
        // Another start with the same key committed first: its run is the answer.
        return try await reading { db in
            guard let existing = try await Self.runID(idempotencyKey: key, db, logger) else {
                throw StoreError(.unreadableRow, "the idempotency key \(key) is taken, but no run holds it")
            }
            return .existing(try await Self.requireRun(existing, key: key, db, logger))
        }
    }

    static func runID(idempotencyKey key: String, _ db: PostgresConnection, _ logger: Logger) async throws -> String? {
        try await db.query("SELECT id FROM run WHERE idempotency_key = \(key)", logger: logger).collect().first.map { try $0.decode(String.self) }
    }

    static func requireRun(_ id: String, key: String, _ db: PostgresConnection, _ logger: Logger) async throws -> StoredRun {
        guard let run = try await loadRun(id: id, db, logger) else {
            throw StoreError(.unreadableRow, "run \(id) holds the idempotency key \(key) but cannot be read back (its definition is missing)")
        }
        return run
    }

    public func recordTransition(runID: String, at: Date, transition: SagaMachine.Transition) async throws {
        try await write(transition, runID: runID, at: at, attempt: nil)
    }

    public func recordAttemptStarted(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws {
        try await write(transition, runID: attempt.runID, at: at, attempt: .started(attempt))
    }

    public func recordAttemptResent(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws {
        try await write(transition, runID: attempt.runID, at: at, attempt: .resent(attempt))
    }

    public func recordAttemptFinished(_ result: AttemptResult, transition: SagaMachine.Transition) async throws {
        try await write(transition, runID: result.attempt.runID, at: result.finishedAt, attempt: .finished(result))
    }

    /// What a transition does to its attempt row, if anything.
    enum AttemptWrite {
        case started(AttemptKey)
        case resent(AttemptKey)
        case finished(AttemptResult)
    }

    /// Stores a transition in **one statement**, so one round trip and one commit: the run row (fenced on this
    /// node owning the run), the step rows the transition changed (every one when it does not say), the events in
    /// order, and the attempt row. A statement is atomic: when the node does not own the run, or the attempt is not
    /// in flight, `skald_refuse` raises and nothing of it is stored.
    /// - Throws: `RunOwnershipLost` when another node owns the run now; `StoreError` for an unknown run or an
    ///   attempt not in flight.
    func write(_ transition: SagaMachine.Transition, runID: String, at: Date, attempt: AttemptWrite?) async throws {
        let common = TransitionStatements.Common(transition, runID: runID, owner: node, epoch: RunFence.epoch, at: at)
        // Stored with the transitions other runs write at the same moment; one refused is written again alone, to
        // hear why (nothing of it was stored).
        if try await transitionBatcher.submit(runID: runID, entry: TransitionBatch.entry(common, attempt: attempt)) == .applied { return }
        let logger = logger
        do {
            let started = ContinuousClock.now
            _ = try await reading { db in
                switch attempt {
                case nil: try await Self.run(TransitionStatements.Only(common: common), on: db, logger)
                case .started(let key)?: try await Self.run(TransitionStatements.Started(common: common, key: key), on: db, logger)
                case .resent(let key)?: try await Self.run(TransitionStatements.Resent(common: common, key: key), on: db, logger)
                case .finished(let result)?:
                    var record = AttemptRecord(key: result.attempt, startedAt: result.finishedAt)
                    record.finish(with: result)
                    try await Self.run(TransitionStatements.Finished(common: common, record: record), on: db, logger)
                }
            }
            metrics.committed(transitions: 1, in: ContinuousClock.now - started)
        } catch let error as StoreError where error.kind == .notOwner {
            let owner = try await reading { db in
                try await db.query("SELECT owner FROM run WHERE id = \(runID)", logger: logger).collect().first
            }
            guard let owner else { throw StoreError.unknownRun(runID) }
            throw RunOwnershipLost(runID: runID, owner: try owner.decode(String?.self))
        } catch let error as StoreError where error.kind == .attemptNotInFlight {
            switch attempt {
            case .started(let key)?, .resent(let key)?: throw StoreError.notInFlight(key)
            case .finished(let result)?: throw StoreError.notInFlight(result.attempt)
            case nil: throw error
            }
        }
    }

    /// Runs one batch statement, answering the numbers of the entries it stored.
    static func send<Statement: PostgresPreparedStatement>(
        _ statement: Statement, client: PostgresClient, pool: PoolGate, location: PostgresLocation, logger: Logger
    ) async throws -> Set<Int> where Statement.Row == Int {
        await pool.wait()
        do {
            return try await client.withConnection { db in
                var applied: Set<Int> = []
                for try await number in try await db.execute(statement, logger: logger) { applied.insert(number) }
                return applied
            }
        } catch {
            throw mapped(error, location: location)
        }
    }

    /// Runs one of the transition statements, prepared once per connection, to its end.
    static func run<Statement: PostgresPreparedStatement>(_ statement: Statement, on db: PostgresConnection, _ logger: Logger) async throws {
        for try await _ in try await db.execute(statement, logger: logger) {}
    }

    static func append(_ events: [RunEvent], runID: String, _ db: PostgresConnection, _ logger: Logger) async throws {
        for event in events {
            try await db.query(
                """
                INSERT INTO event (run_id, at, kind, step, phase, attempt, message, data)
                VALUES (\(runID), \(event.at.timeIntervalSince1970), \(event.kind.rawValue), \(event.step), \(event.phase?.rawValue),
                    \(event.attempt), \(event.message), \(event.data.jsonText))
                """, logger: logger)
        }
    }

    // MARK: - Retention

    /// Deletes runs that ended (completed, compensated, abandoned) before `cutoff`, with their steps, attempts and
    /// history, `batchSize` runs per transaction. Returns how many runs were deleted.
    public func prune(finishedBefore cutoff: Date, batchSize: Int = 500) async throws -> Int {
        let logger = logger
        let time = cutoff.timeIntervalSince1970
        var total = 0
        while true {
            let deleted = try await transaction { db in
                try await db.query(
                    """
                    DELETE FROM run WHERE id IN (
                        SELECT id FROM run WHERE status IN ('completed', 'compensated', 'abandoned') AND updated_at < \(time)
                        ORDER BY updated_at LIMIT \(batchSize))
                    RETURNING 1
                    """, logger: logger
                ).collect().count
            }
            total += deleted
            if deleted < batchSize { return total }
        }
    }

}

/// The PostgreSQL database cannot be used; the message says which (password masked) and what to do.
public struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Opens once; until then every caller of `wait()` waits.
final class PoolGate: Sendable {
    private let state = Mutex<(isOpen: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        if state.withLock({ $0.isOpen }) { return }
        await withCheckedContinuation { continuation in
            let isOpen = state.withLock { state in
                if !state.isOpen { state.waiters.append(continuation) }
                return state.isOpen
            }
            if isOpen { continuation.resume() }
        }
    }
}

import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SkaldCore
import SkaldEngine

/// How `SkaldService` serves: where it listens, what the API allows, and its upkeep. Every field has a default.
extension SkaldService {
    /// The listen address as a URL's host: an IPv6 address in brackets.
    static func urlHost(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}

public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0: a port the system picks (`onListening` says which).
    public var port = 7400
    public var api = APIConfiguration()
    /// How long a client may pause mid-request (or keep an idle connection) before it is disconnected.
    public var readTimeout = APIServerLimits.defaultReadTimeout
    /// The most client connections open at once; nil for no limit.
    public var connections: ConnectionLimit?
    /// The operator's own definitions (`skald serve --sagas`): registered by `registerSagas()`, and what they read
    /// from the environment is allowed to the engine besides `api.environmentPolicy`.
    public var sagas: [SagaDefinition] = []
    /// Finished runs older than this are deleted at start-up and every `pruneInterval`; nil keeps them.
    public var pruneOlderThan: Duration?
    public var pruneInterval: Duration = .seconds(3600)
    /// Told where the server listens once it does (the port it got when `port` is 0).
    public var onListening: @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }
    /// Runs once the database can be used and before anything is served (`skald serve` registers its `--sagas`
    /// here and stops when that fails).
    public var beforeServing: @Sendable (SkaldService) async throws -> Void = { _ in }
    public var logger = Logger(label: "skald")
    /// Hummingbird's own logger (it tells of every request at debug).
    public var httpLogger = Logger(label: "skald.http")

    public init() {}

    /// The environment the engine may read: what the API allows definitions to read, and what the operator's own
    /// definitions read.
    public func engineEnvironment(_ environment: [String: String]) -> [String: String] {
        api.environmentPolicy.allowing(sagas.flatMap(\.environmentNames)).filter(environment)
    }
}

/// Everything `skald serve` runs, as one `Service`: the engine, the HTTP API and console, the release of long polls
/// on shutdown and, when asked, the pruning of old runs. A program that embeds Skald opens a database
/// (`openDatabase`), builds this and runs it in its `ServiceGroup`; graceful shutdown stops the API first and lets
/// the engine drain last.
public final class SkaldService: Service {
    public let engine: Engine
    public let database: any SkaldDatabase
    let configuration: ServerConfiguration

    /// - Parameters:
    ///   - executor: what sends the steps' calls (`HTTPStepExecutor`).
    ///   - engine: the engine's settings; its `environment` should come from `configuration.engineEnvironment`.
    ///   - metrics: `GET /metrics`, rendered from the engine (its Prometheus registry is the caller's).
    public init(
        database: any SkaldDatabase, executor: any StepExecutor, engine: EngineConfiguration, configuration: ServerConfiguration,
        metrics: (@Sendable (Engine) -> MetricsEndpoint)? = nil
    ) {
        self.database = database
        let engine = Engine(store: database, executor: executor, configuration: engine, logger: configuration.logger)
        self.engine = engine
        var configuration = configuration
        if let metrics { configuration.api.metrics = metrics(engine) }
        self.configuration = configuration
    }

    /// Registers the operator's definitions (`configuration.sagas`), before `run`: each with what the database said.
    public func registerSagas(at now: Date = Date()) async throws -> [(saga: SagaDefinition, registration: Registration)] {
        var out: [(SagaDefinition, Registration)] = []
        for saga in configuration.sagas {
            if let loop = try await ChildSagaCycles.problem(in: saga, store: database, alongside: configuration.sagas) {
                throw DefinitionError(file: nil, problems: [loop])
            }
        }
        for saga in configuration.sagas { out.append((saga, try await database.registerDefinition(saga, at: now))) }
        return out
    }

    /// Takes the database's engine lock (a SQLite file is driven by one process), runs what the database needs,
    /// `beforeServing`, then serves until the caller's graceful shutdown, or until a part of it fails.
    public func run() async throws {
        try database.takeEngineLock()
        // The database's own work (PostgreSQL's pool, when it was left to the caller) is a service of its own, listed
        // first: it runs before anything is served, and a graceful shutdown reaches it last, once the engine has
        // drained and stored its last outcomes. (The pool stops at the graceful shutdown it sees: in a child task of
        // this one it would see the caller's at once, and close under the draining engine.)
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: DatabaseService(database: database)), .init(service: Serving(service: self)),
        ]
        try await ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: configuration.logger)).run()
    }

    /// `beforeServing`, then the API, the engine and their helpers.
    struct Serving: Service {
        let service: SkaldService

        func run() async throws {
            try await service.configuration.beforeServing(service)
            try await service.serve()
        }
    }

    /// The API, the engine and their helpers, as a group of their own.
    func serve() async throws {
        let configuration = configuration
        let router = buildRouter(engine: engine, store: database, configuration: configuration.api)
        let app = Application(
            router: router,
            server: APIServerLimits.http1(readTimeout: configuration.readTimeout, connections: configuration.connections),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "skald"),
            onServerRunning: { [engine = self.engine] channel in
                let port = channel.localAddress?.port ?? 0
                // Callback URLs name this server, unless --public-url named it already.
                engine.setPublicURL("http://\(Self.urlHost(configuration.host)):\(port)")
                configuration.onListening(configuration.host, port)
            },
            logger: configuration.httpLogger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: engine), .init(service: app), .init(service: LongPollReleaser(notifier: engine.notifier)),
        ]
        if let age = configuration.pruneOlderThan {
            services.append(.init(service: PruneService(database: database, age: age, interval: configuration.pruneInterval, logger: configuration.logger)))
        }
        // A group of its own, inside the caller's: it follows the caller's graceful shutdown, stopping the services
        // in reverse order (the API first, the engine last, once its attempts in flight are stored).
        try await ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: configuration.logger)).run()
    }
}

/// What the database needs run while it is used (`StoreMaintenance.serve`), until graceful shutdown.
struct DatabaseService: Service {
    let database: any SkaldDatabase

    func run() async throws {
        // PostgreSQL's pool returns at graceful shutdown; with nothing to run, wait for it.
        await database.serve()
        try? await gracefulShutdown()
    }
}

/// On shutdown, wakes clients waiting on long polls so the HTTP server can stop without waiting for them.
struct LongPollReleaser: Service {
    let notifier: EventNotifier

    func run() async throws {
        try? await gracefulShutdown()
        notifier.close()
    }
}

/// Prunes finished runs at start-up and then every `interval` (`skald serve --prune-older-than`).
struct PruneService: Service {
    let database: any SkaldDatabase
    let age: Duration
    let interval: Duration
    let logger: Logger

    /// Returns (without an error) when the server shuts down, so shutting down never looks like a failure.
    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let deleted = try await database.prune(finishedBefore: Date().addingTimeInterval(-age.seconds), batchSize: 500)
                    if deleted > 0 { logger.info("pruned finished runs", metadata: ["count": "\(deleted)", "olderThan": "\(DurationText.format(age))"]) }
                } catch {
                    logger.error("pruning failed; trying again later", metadata: ["error": "\(error)"])
                }
                do { try await Task.sleep(for: interval) } catch { return }
            }
        }
    }
}

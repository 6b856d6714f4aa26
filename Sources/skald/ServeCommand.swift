import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SkaldCore
import SkaldEngine
import SkaldHTTP
import SkaldServer
import SkaldPostgres
import SkaldSQLite

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the engine and the HTTP API: resume unfinished runs, then drive every run started through the API.",
        discussion: """
            SIGTERM or SIGINT stops taking new work, lets attempts in flight finish or time out, stores their \
            outcomes and exits 0. Past --shutdown-timeout the attempts still in flight are cancelled: nothing is \
            stored for them, and the next start sends them again with the same idempotency key. Only one skald \
            process may drive a database at a time.
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var execution: ExecutionOptions
    @OptionGroup var logs: LogOptions

    @Option(name: .long, help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "The port to listen on.")
    var port = 7400

    @Option(name: .long, help: "Register every *.json saga definition in this folder at start-up.")
    var sagas: String?

    @Option(name: .long, help: "The most attempts in flight at once, across all runs.")
    var concurrency = 256

    @Option(name: .long, help: "Require Authorization: Bearer TOKEN on every /v1 call (default: $SKALD_TOKEN).")
    var token: String?

    @Option(name: .long, help: "Every hour, delete runs that completed or were compensated longer ago than this (for example 7d).")
    var pruneOlderThan: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The environment variables definitions may read with {{env.NAME}}, as names and patterns with * (PAYMENTS_*, *_URL) separated by commas (default: $SKALD_ALLOW_ENV).",
            discussion: "The definitions in --sagas may also read what they read; a definition registered over the API only what this names. Skald's own SKALD_* variables never are."))
    var allowEnv: String?

    @Option(
        name: .long,
        help: "On SIGTERM/SIGINT, how long attempts in flight may take to finish; past it they are cancelled, nothing is stored for them, and the next start sends them again with the same key.")
    var shutdownTimeout = "30s"

    @Option(name: .long, help: "How long a client may pause while sending a request (or keep an idle connection open) before it is disconnected.")
    var readTimeout = "30s"

    @Option(name: .long, help: "The most long polls (GET …/events?wait=) waiting at once; past it they are answered 429 with Retry-After.")
    var maxLongPolls = APIConfiguration.defaultMaxLongPolls

    @Option(
        name: .long,
        help: ArgumentHelp(
            "PostgreSQL: how long this node's claim on its runs lasts without renewal (renewed every third of it); when it lapses (the node was killed, or cut off from the database) other nodes take its runs over.",
            discussion: "Shorter means a lost node's runs are taken over sooner; too short for the database's latency under load means nodes lose runs they still drive (they stop at once, and another node sends their calls again with the same keys)."))
    var lease = "10s"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A run with nothing under way whose next move (a sleep's end, an approval's timeout, a long backoff) is further off than this waits as a row in the database, not in memory; it is taken up again this long before it is due.",
            discussion: "From 1s to 1h. Lower keeps fewer runs in memory; higher looks for due runs less."))
    var parkAfter = "60s"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The address participants reach this server by, for the callback URLs of steps that declare \"callback\" (default: http://HOST:PORT as it listens). Its host is allowed as a Host header.",
            discussion: "Set it when participants run on other hosts, or when the server is behind a proxy, for example https://skald.example.com."))
    var publicURL: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A host name clients reach this server by, besides addresses, localhost and --host (repeat it, or separate names with commas; *.example.com for subdomains, * for any).",
            discussion: "A request whose Host is none of them is refused (421), so that a web page whose name was rebound to this server's address cannot call it."))
    var allowedHost: [String] = []

    @Option(
        name: .long,
        help: "The most client connections open at once; past it a connection is answered 503 and closed at once (default: 10000, or fewer if the open-files limit leaves less once the store and participants have theirs).")
    var maxConnections: Int?

    @Flag(name: .long, help: "Serve GET /metrics without the token, for a Prometheus that cannot send one (it shows counts and saga names, never inputs or responses).")
    var metricsPublic = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A JSON file of settings keyed by these options' names, such as {\"port\": 7400, \"allowed-host\": [\"skald.example.com\"]} (default: $SKALD_CONFIG).",
            discussion: "Every option here can also be set by an environment variable, SKALD_ and its name in capitals with _ for - (SKALD_SHUTDOWN_TIMEOUT=45s). A flag wins over the environment, which wins over the file."))
    var config: String?

    @Flag(name: .long, help: "Print the effective settings, where each comes from (flag, environment, file or default), secrets masked, and exit.")
    var printConfig = false

    static let maximumConcurrency = 100_000

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard (1...Self.maximumConcurrency).contains(concurrency) else {
            throw ValidationError("--concurrency must be from 1 to \(Self.maximumConcurrency)")
        }
        if let token, token.isEmpty {
            throw ValidationError("--token is empty: give the token clients must send, or leave --token out to serve without one")
        }
        if let pruneOlderThan { _ = try RetentionAge.parse(pruneOlderThan, option: "--prune-older-than") }
        _ = try Self.shutdownTimeout(shutdownTimeout)
        _ = try Self.readTimeout(readTimeout)
        _ = try Self.lease(lease)
        _ = try Self.parkAfter(parkAfter)
        if let publicURL { _ = try Self.publicURLHost(publicURL) }
        guard (1...1_000_000).contains(maxLongPolls) else { throw ValidationError("--max-long-polls must be from 1 to 1000000") }
        _ = try environmentPolicy()
        _ = try hostPolicy()
        if let maxConnections, !(1...1_000_000).contains(maxConnections) {
            throw ValidationError("--max-connections must be from 1 to 1000000")
        }
    }

    /// `--host` and every `--allowed-host` name.
    func hostPolicy() throws -> HostPolicy {
        do {
            let publicHost = try publicURL.map { try Self.publicURLHost($0) }
            return try HostPolicy(
                listenHost: host, allowed: allowedHost.flatMap { $0.split(separator: ",").map(String.init) } + (publicHost.map { [$0] } ?? []))
        } catch {
            throw ValidationError("--allowed-host: \((error as? HostPolicy.Problem)?.message ?? "\(error)")")
        }
    }

    static let defaultMaxConnections = 10_000

    /// `--max-connections`, within what the open-files limit leaves once the store and the participants have theirs.
    func connectionLimit(storeConnections: Int, output: ServeOutput) -> ConnectionLimit {
        let files = FileLimit.raiseToHard()
        let available = max(16, files - FileLimit.reserve(concurrency: concurrency, storeConnections: storeConnections))
        let wanted = maxConnections ?? Self.defaultMaxConnections
        if wanted > available {
            output.warning(
                "the open-files limit is \(files): \(available) client connections at most, not \(wanted), once the store's \(storeConnections) and \(concurrency) for participants are kept back; raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit), or lower --concurrency")
        }
        return ConnectionLimit(maximum: min(wanted, available))
    }

    /// `--allow-env`, else `SKALD_ALLOW_ENV`, else nothing (only what `--sagas` reads).
    func environmentPolicy() throws -> EnvironmentPolicy {
        let (text, source) = allowEnv.map { ($0, "--allow-env") }
            ?? (ProcessInfo.processInfo.environment["SKALD_ALLOW_ENV"] ?? "", "SKALD_ALLOW_ENV")
        do {
            return try EnvironmentPolicy.parse(text)
        } catch {
            throw ValidationError("\(source): \(error.message)")
        }
    }

    static func readTimeout(_ text: String) throws -> Duration {
        guard let duration = DurationText.parse(text), duration >= .milliseconds(10), duration <= .seconds(3600) else {
            throw ValidationError("--read-timeout must be a duration from 10ms to 1h, such as 30s, not \"\(text)\"")
        }
        return duration
    }

    static func lease(_ text: String) throws -> Duration {
        guard let duration = DurationText.parse(text), duration >= .seconds(1), duration <= .seconds(3600) else {
            throw ValidationError("--lease must be a duration from 1s to 1h, such as 10s, not \"\(text)\"")
        }
        return duration
    }

    /// The host of `--public-url`, checked: an http or https URL with a host and nothing after its path.
    static func publicURLHost(_ text: String) throws -> String {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty, url.query == nil, url.fragment == nil
        else {
            throw ValidationError("--public-url must be an http or https URL such as https://skald.example.com, not \"\(text)\"")
        }
        return host
    }

    static func parkAfter(_ text: String) throws -> Duration {
        guard let duration = DurationText.parse(text), duration >= .seconds(1), duration <= .seconds(3600) else {
            throw ValidationError("--park-after must be a duration from 1s to 1h, such as 60s, not \"\(text)\"")
        }
        return duration
    }

    static func shutdownTimeout(_ text: String) throws -> Duration {
        guard let duration = DurationText.parse(text), duration > .zero, duration <= .seconds(3600) else {
            throw ValidationError("--shutdown-timeout must be a duration from 1ms to 1h, such as 30s, not \"\(text)\"")
        }
        return duration
    }

    func run() async throws {
        if printConfig {
            printSettings()
            return
        }
        logs.bootstrap()
        var logger = Logger(label: "skald")
        logger.logLevel = logs.level
        let output = ServeOutput(json: logs.isJSON, logger: logger)
        let token = token ?? ProcessInfo.processInfo.environment["SKALD_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let metrics = ServeMetrics()
        let participants = try execution.loadParticipants()
        let storeConnections = min(64, max(8, concurrency))
        let connections = connectionLimit(storeConnections: storeConnections, output: output)
        // On PostgreSQL the service runs the connection pool, as a child task that ends after the engine drained.
        let database = try await self.database.openForEngine(connections: storeConnections, metrics: metrics.store, pool: .caller)
        if token == nil && !Self.isLoopback(host) {
            output.warning("listening on \(host) without a token: anyone who can reach this address can start and cancel runs. Set --token or SKALD_TOKEN.")
        }

        // Definitions sent to the API may read only what --allow-env names; the engine also resolves what the
        // operator's own files in --sagas read (for them, and for runs of any definition already stored).
        var server = ServerConfiguration()
        server.host = host
        server.port = port
        server.api = APIConfiguration(token: token, environmentPolicy: try environmentPolicy(), maxLongPolls: maxLongPolls)
        server.api.hosts = try hostPolicy()
        server.readTimeout = try Self.readTimeout(readTimeout)
        server.connections = connections
        let files = try sagas.map { try load(folder: $0, output: output) } ?? []
        server.sagas = files.map(\.saga)
        server.pruneOlderThan = try pruneOlderThan.map { try RetentionAge.parse($0, option: "--prune-older-than") }
        server.logger = logger
        // Hummingbird tells of every request at debug, and of its start at info: shown only when asked for.
        server.httpLogger.logLevel = logs.level <= .debug ? logs.level : max(logs.level, .warning)
        let path = database.name + (database.nodeID.map { ", node \($0)" } ?? "")
        server.onListening = { host, port in
            output.info("skald serve: listening on http://\(host):\(port) (database \(path)\(token == nil ? "" : ", token required"))")
        }
        // The --sagas once the database can be used, before anything is served; a conflict stops the start.
        server.beforeServing = { [self] service in
            if try await !register(service, files: files.map(\.path), output: output) { throw Exit.invalid }
        }
        let client = StepHTTPClients(concurrency: concurrency)
        let service = SkaldService(
            database: database, executor: HTTPStepExecutor(clients: client, maxResponseBytes: execution.maxResponseBytes),
            engine: EngineConfiguration(
                environment: server.engineEnvironment(ProcessInfo.processInfo.environment), concurrency: concurrency,
                node: NodeConfiguration(lease: try Self.lease(lease)), metrics: metrics.engine, participants: participants,
                dataKey: try execution.loadDataKey(), parking: ParkingPolicy(after: try Self.parkAfter(parkAfter)), publicURL: publicURL, onEvents: { run, events in Self.log(run, events, to: output) }),
            configuration: server,
            metrics: { [metricsPublic] engine in
                MetricsEndpoint(isPublic: metricsPublic) { await metrics.render(engine: engine, database: database) }
            })
        let engine = service.engine

        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // Past the timeout the group is cancelled: attempts in flight are abandoned, not stored, and sent again
        // with the same key by the next start. Cancelling is bounded too.
        groupConfiguration.maximumGracefulShutdownDuration = try Self.shutdownTimeout(shutdownTimeout)
        groupConfiguration.maximumCancellationDuration = .seconds(10)
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            try? await client.shutdown()
            await database.close()
            // What stopped the start was said already (a conflicting definition).
            if let exit = error as? ExitCode { throw exit }
            if let error = error as? IOError, error.errnoCode == EADDRINUSE {
                output.error(
                    "cannot listen on \(host):\(port): the address is already in use (another skald serve?); stop that process, or choose another port with --port")
            } else {
                output.error("\(error)")
            }
            throw Exit.failure
        }
        try await client.shutdown()
        await database.close()
        let abandoned = engine.abandonedAttempts.load(ordering: .relaxed)
        if abandoned > 0 {
            output.info(
                "skald serve: stopped; \(abandoned) attempt\(abandoned == 1 ? " was" : "s were") cancelled before \(abandoned == 1 ? "it" : "they") finished (at --shutdown-timeout, or after a failed write): nothing was stored for \(abandoned == 1 ? "it" : "them"), and the next start sends \(abandoned == 1 ? "it" : "them") again with the same idempotency key")
        } else {
            output.info("skald serve: stopped; attempts in flight were finished and stored")
        }
    }

    /// Registers `--sagas` through the service, saying what became of each; false when one conflicts.
    func register(_ service: SkaldService, files: [String], output: ServeOutput) async throws -> Bool {
        var failed = false
        for (index, (saga, registration)) in try await service.registerSagas().enumerated() {
            let file = index < files.count ? files[index] : "\(saga.name) v\(saga.version)"
            switch registration {
            case .registered: output.info("registered \(saga.name) v\(saga.version) from \(file)", ["saga": "\(saga.name)"])
            case .alreadyRegistered: output.info("\(saga.name) v\(saga.version) from \(file) is registered", ["saga": "\(saga.name)"])
            case .conflict:
                output.error("\(file): \(saga.name) version \(saga.version) is already registered with other content; bump \"version\" to register the change")
                failed = true
            }
        }
        if failed { output.error("not starting: fix the definitions above (skald validate \(sagas ?? ".")/*.json)") }
        return !failed
    }

    /// Reads and checks every definition in the folder, printing each problem and warning; exits 2 when any is wrong.
    func load(folder: String, output: ServeOutput) throws -> [(saga: SagaDefinition, path: String)] {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        guard FileManager.default.fileExists(atPath: folder) else {
            output.error("--sagas \(folder): no such folder")
            throw Exit.invalid
        }
        var failed = false
        var loaded: [(saga: SagaDefinition, path: String)] = []
        let environment = ProcessInfo.processInfo.environment
        for name in files {
            let path = (folder as NSString).appendingPathComponent(name)
            switch DefinitionFile.load(path) {
            case .failure(let error):
                for line in error.lines + error.warningLines { if output.json { output.error(line) } else { printError(line) } }
                failed = true
            case .success(let saga):
                loaded.append((saga, path))
                for warning in saga.warnings { output.warning("\(saga.name) v\(saga.version): \(warning)", ["saga": "\(saga.name)"]) }
                let unset = saga.environmentNames.filter { environment[$0] == nil && !EnvironmentPolicy.isReserved($0) }
                if !unset.isEmpty {
                    output.warning(
                        "\(saga.name) v\(saga.version) reads \(unset.joined(separator: ", ")), not set in this server's environment: its runs will be refused until \(unset.count == 1 ? "it is" : "they are") set and skald serve is restarted")
                }
            }
        }
        if failed {
            output.error("not starting: fix the definitions above (skald validate \(folder)/*.json)")
            throw Exit.invalid
        }
        return loaded
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    /// The run's milestones: a line each, or, as JSON, a record each with the run, saga, step, attempt and trace.
    static func log(_ run: PublishedRun, _ events: [RunEvent], to output: ServeOutput) {
        let interesting: Set<RunEvent.Kind> = [
            .runStarted, .runCompleted, .runCompensated, .runCompensationFailed, .runCancelled, .compensationStarted,
            .compensationRetried, .attemptResent, .runTakenOver, .runStuck, .runAbandoned, .runImported, .attemptFailed, .stepFailed,
            .participantWaiting, .participantResumed,
        ]
        let runID = run.id
        let shown = events.filter { interesting.contains($0.kind) }
        guard !shown.isEmpty else { return }
        if output.json {
            for event in shown {
                var metadata: Logger.Metadata = ["run_id": "\(runID)", "saga": "\(run.saga)", "event": "\(event.kind.rawValue)"]
                if let trace = run.traceID { metadata["trace_id"] = "\(trace)" }
                if let step = event.step { metadata["step"] = "\(step)" }
                if let phase = event.phase { metadata["phase"] = "\(phase.rawValue)" }
                if let attempt = event.attempt { metadata["attempt"] = "\(attempt)" }
                let level: Logger.Level =
                    [.runCompensationFailed, .runStuck, .stepFailed].contains(event.kind) ? .warning : [.attemptFailed, .participantWaiting].contains(event.kind) ? .notice : .info
                output.logger.log(level: level, "\(event.message)", metadata: metadata)
            }
            return
        }
        let lines = shown.map { event in
            event.message.hasPrefix("run \(runID)") ? event.message : "run \(runID): \(event.message)"
        }
        print(lines.joined(separator: "\n"))
        fflush(nil)
    }
}

extension ServeCommand {
    /// `--print-config`: each setting's value (secrets masked) and where it came from.
    func printSettings() {
        let secret: (String?) -> String = { $0 == nil ? "(none)" : "***" }
        let database = PostgresLocation.isURL(self.database.path)
            ? ((try? PostgresLocation(url: self.database.path)).map { "\($0)" } ?? "***") : self.database.path
        let values: [String: String] = [
            "db": database, "durability": self.database.durability, "busy-timeout": self.database.busyTimeout, "host": host,
            "port": "\(port)", "sagas": sagas ?? "(none)", "participants": execution.participants ?? "(none)", "concurrency": "\(concurrency)",
            // SKALD_TOKEN and SKALD_DATA_KEY arrive as these flags (ServeSettings.expand).
            "token": secret(token), "data-key": secret(execution.dataKey),
            "allow-env": allowEnv ?? "(none)", "allowed-host": allowedHost.isEmpty ? "(none)" : allowedHost.joined(separator: ","),
            "max-connections": maxConnections.map(String.init) ?? "\(Self.defaultMaxConnections) (or what the open-files limit allows)",
            "read-timeout": readTimeout, "max-long-polls": "\(maxLongPolls)", "max-response-bytes": "\(execution.maxResponseBytes)",
            "shutdown-timeout": shutdownTimeout, "lease": lease, "park-after": parkAfter, "public-url": publicURL ?? "(http://HOST:PORT as it listens)", "prune-older-than": pruneOlderThan ?? "(never)",
            "metrics-public": "\(metricsPublic)", "log-format": logs.logFormat, "log-level": logs.logLevel,
        ]
        let sources = ServeSettings.sources.withLock { $0 }
        let rows = ServeSettings.options.map { option in
            [option.name, values[option.name] ?? "?", sources[option.name].map(\.description) ?? "default"]
        }
        print(Table.render(["SETTING", "VALUE", "FROM"], rows, style: .forStandardOutput))
        if let config = config ?? ProcessInfo.processInfo.environment["SKALD_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) {
            print("config file: \(config)")
        }
    }
}

import ArgumentParser
import Foundation
import SkaldCore
import SkaldEngine
import SkaldPostgres
import SkaldSQLite
import SkaldServer

struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "The database: a SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DATABASE (default: $SKALD_DB, else ./skald.sqlite).")
    var db: String?

    @Option(name: .long, help: "SQLite: process survives kill -9 (WAL, synchronous=NORMAL); full also survives power loss (synchronous=FULL).")
    var durability: String = "process"

    @Option(name: .long, help: "SQLite: how long a write waits for another process that holds the database's write lock before it fails (and is tried again later).")
    var busyTimeout = "10s"

    var path: String {
        db ?? ProcessInfo.processInfo.environment["SKALD_DB"].flatMap { $0.isEmpty ? nil : $0 } ?? "./skald.sqlite"
    }

    var isPostgres: Bool { PostgresLocation.isURL(path) }

    func validate() throws {
        guard Durability(rawValue: durability) != nil else {
            throw ValidationError("--durability must be process or full, not \"\(durability)\"")
        }
        guard let timeout = DurationText.parse(busyTimeout), timeout <= .seconds(3600) else {
            throw ValidationError("--busy-timeout must be a duration of at most 1h, such as 10s, not \"\(busyTimeout)\"")
        }
        if isPostgres {
            do { _ = try PostgresLocation(url: path) } catch { throw ValidationError("--db: \(error)") }
        }
    }

    /// What `openDatabase` needs, from these options.
    func settings(connections: Int = 16, metrics: StoreMetrics = StoreMetrics(), pool: PostgresStore.PoolRunner = .store) -> DatabaseSettings {
        var settings = DatabaseSettings(location: path)
        settings.pool = pool
        settings.durability = Durability(rawValue: durability) ?? .process
        settings.busyTimeout = DurationText.parse(busyTimeout) ?? SQLiteStore.defaultBusyTimeout
        settings.connections = connections
        settings.metrics = metrics
        return settings
    }

    /// Opens the database, or prints why not and exits 1.
    /// - Parameter connections: for PostgreSQL, the most connections the store keeps open.
    func open(connections: Int = 16, metrics: StoreMetrics = StoreMetrics(), pool: PostgresStore.PoolRunner = .store) async throws
        -> any SkaldDatabase
    {
        do {
            return try await openDatabase(settings(connections: connections, metrics: metrics, pool: pool))
        } catch {
            printError("error: \(error)")
            throw Exit.failure
        }
    }

    /// Opens the database and takes what lets this process drive runs (a SQLite file's one-engine lock), or prints
    /// why not and exits 1.
    func openForEngine(connections: Int = 16, metrics: StoreMetrics = StoreMetrics(), pool: PostgresStore.PoolRunner = .store) async throws
        -> any SkaldDatabase
    {
        let database = try await open(connections: connections, metrics: metrics, pool: pool)
        do {
            try database.takeEngineLock()
            return database
        } catch {
            await database.close()
            printError("error: \(error)")
            throw Exit.failure
        }
    }
}

struct ExecutionOptions: ParsableArguments {
    @Option(name: .long, help: "The largest response body kept, in bytes; a larger one fails the attempt.")
    var maxResponseBytes: Int = 1 << 20

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A participants file: circuit breakers, bulkheads and rate limits shared by every saga (see Sagas/participants.json).",
            discussion: "Its settings replace those of a saga's participant of the same name; a participant with a baseUrl also takes the calls of steps that name none."))
    var participants: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seal the writeOnly fields of run inputs in the database with this key: 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits (default: $SKALD_DATA_KEY).",
            discussion: "Without a key they are stored as given. Every node and command that drives the runs needs the same key."))
    var dataKey: String?

    func validate() throws {
        guard maxResponseBytes > 0 else { throw ValidationError("--max-response-bytes must be at least 1") }
        _ = try loadDataKey()
    }

    /// `--data-key`, else `SKALD_DATA_KEY`, else none.
    func loadDataKey() throws -> DataKey? {
        let (text, source) = dataKey.map { ($0, "--data-key") }
            ?? (ProcessInfo.processInfo.environment["SKALD_DATA_KEY"] ?? "", "SKALD_DATA_KEY")
        guard !text.isEmpty else { return nil }
        do {
            return try DataKey(text: text)
        } catch {
            throw ValidationError("\(source): \(error)")
        }
    }

    /// The participants file's settings (none without --participants), or every problem printed and exit 2.
    func loadParticipants() throws -> [String: ParticipantSettings] {
        guard let path = participants else { return [:] }
        guard let data = FileManager.default.contents(atPath: path) else {
            printError("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot read the file; check its permissions" : "no such file; check the path given to --participants")")
            throw Exit.invalid
        }
        do {
            return try DefinitionParser.parseParticipants(Array(data), file: path)
        } catch {
            for line in error.lines { printError(line) }
            throw Exit.invalid
        }
    }
}

/// Reads `--input` (or another JSON option, such as `resolve --response`): inline JSON, or `@path` to read a file.
enum InputArgument {
    static func load(_ argument: String?, option: String = "--input") throws(InputLoadError) -> JSONValue {
        guard let argument else { return .object([:]) }
        let source: String
        let bytes: [UInt8]
        if argument.hasPrefix("@") {
            source = String(argument.dropFirst())
            guard let data = FileManager.default.contents(atPath: source) else {
                throw InputLoadError(message: "cannot read the file \(source) of \(option); check the path after '@'")
            }
            bytes = Array(data)
        } else {
            source = option
            bytes = Array(argument.utf8)
        }
        do {
            return try JSONParser.parse(bytes).value
        } catch {
            throw InputLoadError(message: "\(source):\(error.location): malformed JSON \(option == "--input" ? "input" : "in \(option)"): \(error.message)")
        }
    }
}

extension InputArgument {
    /// Loads `--input`, or prints why not and exits 2.
    static func loadOrExit(_ argument: String?, option: String = "--input") throws -> JSONValue {
        do {
            return try load(argument, option: option)
        } catch {
            printError(error.message)
            throw Exit.invalid
        }
    }
}

struct InputLoadError: Error {
    var message: String
}

/// Reads and validates a definition file, printing every problem.
enum DefinitionFile {
    static func load(_ path: String) -> Result<SagaDefinition, DefinitionError> {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            return .failure(
                DefinitionError(
                    file: path,
                    problems: [DefinitionProblem(path: nil, message: exists ? "cannot read the file; check its permissions" : "no such file; check the path")]))
        }
        do {
            return .success(try DefinitionParser.parse(Array(data), file: path))
        } catch {
            return .failure(error)
        }
    }
}

extension DefinitionFile {
    /// Loads a definition, or prints every problem and exits 2.
    static func loadOrExit(_ path: String) throws -> SagaDefinition {
        switch load(path) {
        case .success(let saga): return saga
        case .failure(let error):
            for line in error.lines { printError(line) }
            throw Exit.invalid
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

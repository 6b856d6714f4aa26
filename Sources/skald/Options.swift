import ArgumentParser
import Foundation
import SkaldCore
import SkaldSQLite

struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "The SQLite database file (default: $SKALD_DB, else ./skald.sqlite).")
    var db: String?

    @Option(name: .long, help: "process: survives kill -9 (WAL, synchronous=NORMAL); full: also survives power loss (synchronous=FULL).")
    var durability: String = "process"

    @Option(name: .long, help: "How long a write waits for another process that holds the database's write lock before it fails (and is tried again later).")
    var busyTimeout = "10s"

    var path: String {
        db ?? ProcessInfo.processInfo.environment["SKALD_DB"].flatMap { $0.isEmpty ? nil : $0 } ?? "./skald.sqlite"
    }

    func validate() throws {
        guard Durability(rawValue: durability) != nil else {
            throw ValidationError("--durability must be process or full, not \"\(durability)\"")
        }
        guard let timeout = DurationText.parse(busyTimeout), timeout <= .seconds(3600) else {
            throw ValidationError("--busy-timeout must be a duration of at most 1h, such as 10s, not \"\(busyTimeout)\"")
        }
    }

    func open() throws -> SQLiteStore {
        try SQLiteStore(
            path: path, durability: Durability(rawValue: durability) ?? .process,
            busyTimeout: DurationText.parse(busyTimeout) ?? SQLiteStore.defaultBusyTimeout)
    }

    /// Opens the store and takes the one-engine-per-database lock, or prints why not and exits 1.
    func openForEngine() throws -> (store: SQLiteStore, lock: EngineLock) {
        do {
            let store = try open()
            return (store, try EngineLock(databasePath: store.path))
        } catch {
            printError("error: \(error)")
            throw Exit.failure
        }
    }
}

struct ExecutionOptions: ParsableArguments {
    @Option(name: .long, help: "The largest response body kept, in bytes; a larger one fails the attempt.")
    var maxResponseBytes: Int = 1 << 20

    func validate() throws {
        guard maxResponseBytes > 0 else { throw ValidationError("--max-response-bytes must be at least 1") }
    }
}

/// Reads `--input`: inline JSON, or `@path` to read a file.
enum InputArgument {
    static func load(_ argument: String?) throws(InputLoadError) -> JSONValue {
        guard let argument else { return .object([:]) }
        let source: String
        let bytes: [UInt8]
        if argument.hasPrefix("@") {
            source = String(argument.dropFirst())
            guard let data = FileManager.default.contents(atPath: source) else {
                throw InputLoadError(message: "cannot read the input file \(source); check the path after '@'")
            }
            bytes = Array(data)
        } else {
            source = "--input"
            bytes = Array(argument.utf8)
        }
        do {
            return try JSONParser.parse(bytes).value
        } catch {
            throw InputLoadError(message: "\(source):\(error.location): malformed JSON input: \(error.message)")
        }
    }
}

extension InputArgument {
    /// Loads `--input`, or prints why not and exits 2.
    static func loadOrExit(_ argument: String?) throws -> JSONValue {
        do {
            return try load(argument)
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

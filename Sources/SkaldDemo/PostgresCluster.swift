import Foundation
import SkaldEngine
import SkaldPostgres
import SkaldSQLite
import Synchronization

/// A throwaway PostgreSQL server for tests and benchmarks: a new cluster in a temporary directory, listening on
/// 127.0.0.1 on a free port, with a password-protected user. PostgreSQL refuses to run as root, so when this
/// process is root the server runs as the `postgres` account (Debian's `postgresql` package creates it).
/// `stop()` ends the server and removes the directory.
public final class PostgresCluster: Sendable {
    public let port: Int
    public let directory: URL
    public let user = "skald"
    public let password: String
    let bin: URL
    let runAs: String?

    /// The URL of a database on this server (`postgres` is there from the start).
    public func url(database: String = "postgres") -> String {
        "postgres://\(user):\(password)@127.0.0.1:\(port)/\(database)"
    }

    /// Starts a new cluster.
    /// - Parameters:
    ///   - durable: false turns fsync off (tests need no crash safety from the server's disk writes;
    ///     benchmarks should pass true).
    ///   - synchronousCommit: with `durable`, whether each commit waits for its WAL to reach the disk (PostgreSQL's
    ///     default); off, a commit survives a crash of Skald but the last fraction of a second of commits may be
    ///     lost if the PostgreSQL server or the machine crashes, as with SQLite's WAL at synchronous=NORMAL.
    ///   - statementStatistics: loads `pg_stat_statements` (Debian's `postgresql-contrib`), so that a benchmark can
    ///     count the statements a run costs and where the server's time goes.
    public static func start(durable: Bool = false, synchronousCommit: Bool = true, statementStatistics: Bool = false) async throws -> PostgresCluster {
        guard let bin = findBinaries() else {
            throw SpawnError(
                message: "PostgreSQL's server programs (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin or on PATH; install Debian's postgresql package (apt-get install postgresql)")
        }
        let runAs: String? = geteuid() == 0 ? "postgres" : nil
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("skald-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let password = "pw-\(UUID().uuidString.prefix(12))"
        try Data((password + "\n").utf8).write(to: directory.appendingPathComponent("pwfile"))
        if let runAs {
            try FileManager.default.setAttributes([.ownerAccountName: runAs], ofItemAtPath: directory.path)
            try FileManager.default.setAttributes(
                [.ownerAccountName: runAs], ofItemAtPath: directory.appendingPathComponent("pwfile").path)
        }
        let data = directory.appendingPathComponent("data").path
        try await PostgresCluster(port: 0, directory: directory, password: password, bin: bin, runAs: runAs).command(
            "initdb", ["-D", data, "-U", "skald", "--pwfile=\(directory.appendingPathComponent("pwfile").path)", "--auth-local=trust",
                "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
        let log = directory.appendingPathComponent("server.log")
        // The free port is found before the server binds it: another socket (a test's outgoing connection) may take
        // it in between, and the server then stops with "Address already in use". Another port is tried.
        for attempt in 1...5 {
            let cluster = PostgresCluster(port: try freePort(), directory: directory, password: password, bin: bin, runAs: runAs)
            var options = "-c listen_addresses=127.0.0.1 -p \(cluster.port) -k \(directory.path) -c max_connections=1000"
            if !durable {
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            } else if !synchronousCommit {
                options += " -c synchronous_commit=off"
            }
            if statementStatistics { options += " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" }
            // For profiling: server settings of one's own (say, auto_explain's), appended as given.
            if let extra = ProcessInfo.processInfo.environment["SKALD_POSTGRES_OPTIONS"], !extra.isEmpty { options += " " + extra }
            do {
                try await cluster.command("pg_ctl", ["-D", data, "-l", log.path, "-w", "-t", "60", "-o", options, "start"])
                return cluster
            } catch {
                let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                guard attempt < 5, said.contains("Address already in use") else { throw error }
                try? FileManager.default.removeItem(at: log)
            }
        }
        preconditionFailure("unreachable: the last attempt returns or throws")
    }

    /// One cluster for the whole process (a test run), started on first use and stopped when the process exits.
    public static func shared() async throws -> PostgresCluster {
        try await SharedCluster.instance.get()
    }

    /// Stops the server at once, without suspending (for an exit handler), and removes its directory.
    public func stopNow() {
        let process = Process()
        let pgCtl = bin.appendingPathComponent("pg_ctl").path
        let arguments = ["-D", directory.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"]
        if let runAs {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", runAs, "--", pgCtl] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: pgCtl)
            process.arguments = arguments
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        if (try? process.run()) != nil { process.waitUntilExit() }
        try? FileManager.default.removeItem(at: directory)
    }

    init(port: Int, directory: URL, password: String, bin: URL, runAs: String?) {
        self.port = port
        self.directory = directory
        self.password = password
        self.bin = bin
        self.runAs = runAs
    }

    /// Creates an empty database and returns its URL.
    public func createDatabase(_ name: String) async throws -> String {
        try await command("createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", user, name], environment: ["PGPASSWORD": password])
        return url(database: name)
    }

    /// Stops the server at once and removes its directory.
    public func stop() async {
        _ = try? await command("pg_ctl", ["-D", directory.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(at: directory)
    }

    /// The server's log, for a test that failed.
    public var log: String {
        (try? String(contentsOf: directory.appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
    }

    private func command(_ program: String, _ arguments: [String], environment extra: [String: String] = [:]) async throws {
        let executable = bin.appendingPathComponent(program).path
        var environment = ProcessInfo.processInfo.environment
        environment.merge(extra) { _, new in new }
        let (path, fullArguments): (String, [String])
        if let runAs {
            // runuser keeps the environment it is given (PGPASSWORD) and needs no password as root.
            (path, fullArguments) = ("/usr/sbin/runuser", ["-u", runAs, "--", executable] + arguments)
        } else {
            (path, fullArguments) = (executable, arguments)
        }
        let process = try ChildProcess(executable: path, fullArguments, environment: environment, directory: directory, outputIn: directory)
        let (status, _) = await process.waitForExit()
        guard status == 0 else {
            throw SpawnError(message: "\(program) failed (exit \(status)): \(process.stderr)\(process.stdout)")
        }
    }

    static func findBinaries() -> URL? {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let folder = URL(fileURLWithPath: "/usr/lib/postgresql/\(version)/bin")
            if FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("initdb").path) { return folder }
        }
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let url = URL(fileURLWithPath: String(folder))
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("initdb").path)
                && FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("pg_ctl").path)
            {
                return url
            }
        }
        return nil
    }

    /// A port nothing listens on now (the kernel's choice for a socket bound to port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SpawnError(message: "cannot open a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw SpawnError(message: "cannot bind a socket to find a free port") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// The process's shared cluster.
actor SharedCluster {
    static let instance = SharedCluster()
    private var cluster: PostgresCluster?
    private var starting: Task<PostgresCluster, any Error>?

    func get() async throws -> PostgresCluster {
        if let cluster { return cluster }
        let task = starting ?? Task { try await PostgresCluster.start() }
        starting = task
        do {
            let started = try await task.value
            if cluster == nil {
                cluster = started
                clusterToStopAtExit.withLock { $0 = started }
                atexit { clusterToStopAtExit.withLock { $0 }?.stopNow() }
            }
            return started
        } catch {
            starting = nil
            throw error
        }
    }
}

private let clusterToStopAtExit = Mutex<PostgresCluster?>(nil)

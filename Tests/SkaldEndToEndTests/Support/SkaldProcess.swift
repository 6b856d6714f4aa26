import Foundation

/// The repository root, for Sagas/.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// The `skald` binary built next to this test bundle.
let skaldBinary: URL = {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return executable.deletingLastPathComponent().appendingPathComponent("skald")
}()

/// A fresh folder for one test.
func temporaryFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("skald-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

/// A child process started with posix_spawn, its output in files. (Foundation's Process on Linux crashed here now
/// and then under load; posix_spawn and a waiting thread have no dispatch sources to race.)
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    let stdoutURL: URL
    let stderrURL: URL
    private let exit: AsyncStream<(status: Int32, signalled: Bool)>

    init(executable: String, _ arguments: [String], environment: [String: String], directory: URL, outputIn folder: URL) throws {
        stdoutURL = folder.appendingPathComponent("stdout-\(UUID().uuidString).txt")
        stderrURL = folder.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Start in `directory` through the shell, which then replaces itself with the program.
        let command = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory.path, executable] + arguments
        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, "/bin/sh", &actions, nil, argv, envp)
        guard result == 0 else {
            throw TimedOut(what: "spawning \(executable): \(String(cString: strerror(result)))")
        }
        pid = child
        let spawned = child
        let (stream, continuation) = AsyncStream.makeStream(of: (status: Int32, signalled: Bool).self)
        exit = stream
        let thread = Thread {
            var status: Int32 = 0
            while waitpid(spawned, &status, 0) == -1 && errno == EINTR {}
            let signalled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
            continuation.yield(signalled ? (status & 0x7f, true) : ((status >> 8) & 0xff, false))
            continuation.finish()
        }
        thread.start()
    }

    /// The exit status, or the signal number when a signal ended it.
    func waitForExit() async -> (status: Int32, signalled: Bool) {
        for await result in exit { return result }
        return (-1, false)
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    var isRunning: Bool { Foundation.kill(pid, 0) == 0 && !hasExited }
    private var hasExited: Bool {
        // A zombie still accepts kill(pid, 0); /proc says whether it is one.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return stat.isEmpty || stat.contains(") Z ")
    }
}

/// The real `skald` binary, started as a child process with its output in files.
final class SkaldProcess: @unchecked Sendable {
    let child: ChildProcess

    init(_ arguments: [String], environment: [String: String] = [:], in folder: URL) throws {
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "SKALD_DB")
        for (key, value) in environment { env[key] = value }
        child = try ChildProcess(executable: skaldBinary.path, arguments, environment: env, directory: packageRoot, outputIn: folder)
    }

    /// Runs `skald` to the end.
    static func run(_ arguments: [String], environment: [String: String] = [:], in folder: URL) async throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let process = try SkaldProcess(arguments, environment: environment, in: folder)
        let status = await process.waitForExit()
        return (status, process.stdout, process.stderr)
    }

    /// The exit status (or the signal number, when a signal ended it).
    func waitForExit() async -> Int32 { await child.waitForExit().status }

    func kill() { Foundation.kill(child.pid, SIGKILL) }
    func terminate() { Foundation.kill(child.pid, SIGTERM) }

    var isRunning: Bool { child.isRunning }
    var stdout: String { child.stdout }
    var stderr: String { child.stderr }
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` until it holds, failing (not hanging) if it never does.
/// The limit is a safety net against a hung test, not a timing assertion.
func waitFor(_ what: String, limit: Duration = .seconds(120), _ condition: @Sendable () async -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while !(await condition()) {
        if ContinuousClock.now > deadline { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

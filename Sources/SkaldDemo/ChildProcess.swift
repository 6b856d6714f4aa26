import Foundation

/// A child process started with posix_spawn, its output in files. (Foundation's Process on Linux crashed here now
/// and then under load; posix_spawn and a waiting thread have no dispatch sources to race.)
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let stdoutURL: URL
    public let stderrURL: URL
    private let exit: AsyncStream<(status: Int32, signalled: Bool)>

    public init(executable: String, _ arguments: [String], environment: [String: String], directory: URL, outputIn folder: URL) throws {
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
            throw SpawnError(message: "cannot start \(executable): \(String(cString: strerror(result)))")
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
    public func waitForExit() async -> (status: Int32, signalled: Bool) {
        for await result in exit { return result }
        return (-1, false)
    }

    public var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    public var isRunning: Bool { Foundation.kill(pid, 0) == 0 && !hasExited }
    private var hasExited: Bool {
        // A zombie still accepts kill(pid, 0); /proc says whether it is one.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return stat.isEmpty || stat.contains(") Z ")
    }
}

public struct SpawnError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

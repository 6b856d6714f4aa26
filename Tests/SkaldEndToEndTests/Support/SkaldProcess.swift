import Foundation
import SkaldDemo
import SkaldTestSupport

/// The `skald` binary built next to this test bundle.
let skaldBinary: URL = {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return executable.deletingLastPathComponent().appendingPathComponent("skald")
}()

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


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

/// The real `skald` binary, started as a child process with its output in files.
final class SkaldProcess: @unchecked Sendable {
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL
    private let exited: AsyncStream<Int32>
    private let exitContinuation: AsyncStream<Int32>.Continuation

    init(_ arguments: [String], environment: [String: String] = [:], in folder: URL) throws {
        stdoutURL = folder.appendingPathComponent("stdout-\(UUID().uuidString).txt")
        stderrURL = folder.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        (exited, exitContinuation) = AsyncStream.makeStream(of: Int32.self)
        process.executableURL = skaldBinary
        process.arguments = arguments
        process.currentDirectoryURL = packageRoot
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "SKALD_DB")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        let continuation = exitContinuation
        process.terminationHandler = { process in
            continuation.yield(process.terminationStatus)
            continuation.finish()
        }
        try process.run()
    }

    /// Runs `skald` to the end.
    static func run(_ arguments: [String], environment: [String: String] = [:], in folder: URL) async throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let process = try SkaldProcess(arguments, environment: environment, in: folder)
        let status = await process.waitForExit()
        return (status, process.stdout, process.stderr)
    }

    func waitForExit() async -> Int32 {
        for await status in exited { return status }
        return process.terminationStatus
    }

    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
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

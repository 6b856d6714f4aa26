import Foundation
import Glibc
import Synchronization
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

/// `skald serve` started with a low soft limit on open files, as a common default leaves it, and a flood of idle
/// connections: it raises the limit to the hard one, refuses connections past --max-connections at once, and
/// answers again once the flood is gone.
@Suite(.timeLimit(.minutes(10))) struct ConnectionLimitTests {
    @Test func aFloodOfIdleConnectionsIsRefusedAtOnceAndTheLimitOnFilesIsRaised() async throws {
        let folder = try temporaryFolder()
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "SKALD_DB")
        let child = try ChildProcess(
            executable: "/usr/bin/prlimit",
            [
                "--nofile=256:4096", skaldBinary.path, "serve", "--db", folder.appendingPathComponent("skald.sqlite").path, "--port", "0",
                "--max-connections", "20", "--concurrency", "16", "--read-timeout", "20s",
            ], environment: environment, directory: packageRoot, outputIn: folder)
        defer { Foundation.kill(child.pid, SIGKILL) }
        try await waitFor("skald serve to listen") { child.stdout.contains("listening on ") || !child.isRunning }
        let line = try #require(child.stdout.split(separator: "\n").first { $0.contains("listening on ") }, "\(child.stdout)\(child.stderr)")
        let url = try #require(line.components(separatedBy: "listening on ").last?.components(separatedBy: " ").first)
        let port = try #require(url.split(separator: ":").last.flatMap { Int($0) })

        // The soft limit was raised to the hard one.
        let limits = try String(contentsOfFile: "/proc/\(child.pid)/limits", encoding: .utf8)
        let files = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        #expect(files.split(separator: " ").filter { !$0.isEmpty }.dropFirst(3).prefix(2) == ["4096", "4096"], "\(files)")

        #expect(await Self.health(port: port).hasPrefix("HTTP/1.1 200"))
        // Twenty idle connections take every place; the next is answered 503 at once, not left to time out.
        let idle = Mutex((0..<20).map { _ in Self.connect(port: port) })
        #expect(idle.withLock { $0.allSatisfy { $0 >= 0 } })
        // (A connection that just closed can hold its place for an instant, so one of the twenty may have been
        // refused itself: another idle one takes its place, a few at most.)
        let refused = Mutex("")
        do {
            try await waitFor("the idle connections to fill the limit", limit: .seconds(60)) {
                let answer = await Self.health(port: port)
                refused.withLock { $0 = answer }
                if answer.hasPrefix("HTTP/1.1 503") { return true }
                idle.withLock { $0.append(Self.connect(port: port)) }
                return false
            }
        } catch {
            Issue.record("the last answer: \(refused.withLock { $0 }); the server said \(child.stdout)\(child.stderr)")
            throw error
        }
        #expect(idle.withLock { $0.count } <= 25)
        let answer = refused.withLock { $0 }
        #expect(answer.contains("too_many_connections") && answer.lowercased().contains("retry-after: 1"), "\(answer)")
        for socket in idle.withLock({ $0 }) { close(socket) }
        // Once they are gone (closed, or timed out by --read-timeout), it answers again.
        try await waitFor("the server to answer again", limit: .seconds(60)) { await Self.health(port: port).hasPrefix("HTTP/1.1 200") }
        #expect(child.isRunning, "\(child.stderr)")
    }

    /// `GET /health` on a connection of its own, read on a thread of its own (the socket blocks); what came back.
    static func health(port: Int) async -> String {
        await withCheckedContinuation { continuation in
            Thread {
                let fd = connect(port: port)
                var limit = timeval(tv_sec: 20, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
                let request = Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
                _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if count <= 0 { break }
                    received += buffer[0..<count]
                }
                close(fd)
                continuation.resume(returning: String(decoding: received, as: UTF8.self))
            }.start()
        }
    }

    /// A connected socket that sends nothing.
    static func connect(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return connected == 0 ? fd : -1
    }
}

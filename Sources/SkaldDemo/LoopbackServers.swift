import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Runs Hummingbird routers on 127.0.0.1 for the duration of `body`.
public enum LoopbackServers {
    /// Starts one server per router (port 0 means any free port), passes their ports to `body`, then stops them.
    ///
    /// The servers are stopped by a graceful shutdown, not by cancelling them: cancelling a Hummingbird server
    /// while a connection is accepted but not yet handed to it traps in SwiftNIO ("Deinited NIOAsyncWriter without
    /// calling finish()", apple/swift-nio#2813). A graceful shutdown closes the listening socket and serves what
    /// was accepted; requests still held open after `gracefulShutdownLimit` (a participant told to hold its
    /// answers) are then cancelled.
    public static func withRunning<T: Sendable>(
        _ routers: [Router<BasicRequestContext>], ports: [Int]? = nil, _ body: @Sendable ([Int]) async throws -> T
    ) async throws -> T {
        var logger = Logger(label: "skald.loopback")
        logger.logLevel = .critical
        let (portStream, portContinuation) = AsyncStream.makeStream(of: (Int, Int).self)
        let apps = routers.enumerated().map { index, router in
            Application(
                router: router,
                configuration: .init(address: .hostname("127.0.0.1", port: ports?[index] ?? 0)),
                onServerRunning: { channel in portContinuation.yield((index, channel.localAddress?.port ?? 0)) },
                logger: logger)
        }
        var configuration = ServiceGroupConfiguration(
            services: apps.map { .init(service: $0) }, gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        configuration.maximumGracefulShutdownDuration = gracefulShutdownLimit
        let group = ServiceGroup(configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // A server that cannot start (its port is taken) ends the wait for ports below.
                defer { portContinuation.finish() }
                try await group.run()
            }
            var bound = [Int](repeating: 0, count: routers.count)
            var remaining = routers.count
            for await (index, port) in portStream {
                bound[index] = port
                remaining -= 1
                if remaining == 0 { break }
            }
            portContinuation.finish()
            guard remaining == 0 else {
                try await tasks.waitForAll()
                throw LoopbackServerError(message: "a loopback server stopped before it was listening")
            }
            let result: Result<T, any Error>
            do { result = .success(try await body(bound)) } catch { result = .failure(error) }
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            return try result.get()
        }
    }

    /// How long a graceful shutdown may wait for requests still in progress before they are cancelled.
    static let gracefulShutdownLimit: Duration = .seconds(1)
}

struct LoopbackServerError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

import Foundation
import Hummingbird
import Logging
import NIOCore

/// Runs Hummingbird routers on 127.0.0.1 for the duration of `body`.
public enum LoopbackServers {
    /// Starts one server per router (port 0 means any free port), passes their ports to `body`, then stops them.
    public static func withRunning<T: Sendable>(
        _ routers: [Router<BasicRequestContext>], ports: [Int]? = nil, _ body: @Sendable ([Int]) async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            let (portStream, portContinuation) = AsyncStream.makeStream(of: (Int, Int).self)
            for (index, router) in routers.enumerated() {
                var logger = Logger(label: "skald.loopback")
                logger.logLevel = .critical
                let app = Application(
                    router: router,
                    configuration: .init(address: .hostname("127.0.0.1", port: ports?[index] ?? 0)),
                    onServerRunning: { channel in portContinuation.yield((index, channel.localAddress?.port ?? 0)) },
                    logger: logger)
                group.addTask {
                    try await app.run()
                    return nil
                }
            }
            var bound = [Int](repeating: 0, count: routers.count)
            var remaining = routers.count
            for await (index, port) in portStream {
                bound[index] = port
                remaining -= 1
                if remaining == 0 { break }
            }
            portContinuation.finish()
            defer { group.cancelAll() }
            return try await body(bound)
        }
    }
}

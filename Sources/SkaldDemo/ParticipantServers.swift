import Foundation
import Hummingbird
import Logging
import NIOCore

/// Participants listening on 127.0.0.1, each on a port of its own.
public struct RunningParticipants: Sendable {
    public var participants: [Participant.Kind: Participant]
    public var urls: [Participant.Kind: String]

    public subscript(kind: Participant.Kind) -> Participant { participants[kind]! }

    /// `INVENTORY_URL`, `PAYMENTS_URL`, `SHIPPING_URL`: what the example sagas read.
    public var environment: [String: String] {
        Dictionary(uniqueKeysWithValues: urls.map { ($0.key.environmentName, $0.value) })
    }
}

extension Participant {
    /// Starts the participants on 127.0.0.1 (ports chosen by the system unless given), runs `body`, then stops them.
    public static func withRunning<T: Sendable>(
        _ kinds: [Kind] = Kind.allCases, ports: [Kind: Int] = [:],
        _ body: @Sendable (RunningParticipants) async throws -> T
    ) async throws -> T {
        let participants = Dictionary(uniqueKeysWithValues: kinds.map { ($0, Participant(kind: $0)) })
        return try await withThrowingTaskGroup(of: T?.self) { group in
            let (portStream, portContinuation) = AsyncStream.makeStream(of: (Kind, Int).self)
            for (kind, participant) in participants {
                var logger = Logger(label: "skald.demo.\(kind.rawValue)")
                logger.logLevel = .critical
                let app = Application(
                    router: participant.router(),
                    configuration: .init(address: .hostname("127.0.0.1", port: ports[kind] ?? 0), serverName: kind.rawValue),
                    onServerRunning: { channel in portContinuation.yield((kind, channel.localAddress?.port ?? 0)) },
                    logger: logger)
                group.addTask {
                    try await app.run()
                    return nil
                }
            }
            var urls: [Kind: String] = [:]
            for await (kind, port) in portStream {
                urls[kind] = "http://127.0.0.1:\(port)"
                if urls.count == participants.count { break }
            }
            portContinuation.finish()
            let running = RunningParticipants(participants: participants, urls: urls)
            let result: T
            do {
                result = try await body(running)
            } catch {
                for participant in participants.values { await participant.releaseHeld() }
                group.cancelAll()
                throw error
            }
            for participant in participants.values {
                await participant.setFaults(Faults())
                await participant.releaseHeld()
            }
            group.cancelAll()
            return result
        }
    }
}

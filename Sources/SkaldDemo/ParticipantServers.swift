import Foundation

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
        let participants = kinds.map { Participant(kind: $0) }
        let requestedPorts = kinds.map { ports[$0] ?? 0 }
        return try await LoopbackServers.withRunning(participants.map { $0.router() }, ports: requestedPorts) { bound in
            var urls: [Kind: String] = [:]
            for (kind, port) in zip(kinds, bound) { urls[kind] = "http://127.0.0.1:\(port)" }
            let running = RunningParticipants(
                participants: Dictionary(uniqueKeysWithValues: participants.map { ($0.kind, $0) }), urls: urls)
            // Never leave a request hanging when the servers stop (they serve what they accepted first): held ones
            // are answered, and nothing arriving meanwhile is held.
            @Sendable func letGo() async {
                for participant in participants {
                    await participant.setFaults(Faults())
                    await participant.releaseHeld()
                }
            }
            do {
                let result = try await body(running)
                await letGo()
                return result
            } catch {
                await letGo()
                throw error
            }
        }
    }
}

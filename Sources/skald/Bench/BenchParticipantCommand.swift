import ArgumentParser
import Foundation
import Hummingbird
import Logging
import SkaldDemo

/// The fast participant of `skald bench`, in a process of its own so its CPU time is not counted as Skald's.
struct BenchParticipantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-participant", abstract: "The benchmark's participant service (started by skald bench).",
        shouldDisplay: false)

    @Option var port: Int = 0

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
    }

    func run() async throws {
        var logger = Logger(label: "skald.bench.participant")
        logger.logLevel = .critical
        let app = Application(
            router: BenchParticipant().router(),
            // Many connections arrive at once in the in-flight scenario: keep them in the accept queue.
            configuration: .init(address: .hostname("127.0.0.1", port: port), backlog: 16_384),
            onServerRunning: { channel in
                print("listening on \(channel.localAddress?.port ?? 0)")
                fflush(nil)
            },
            logger: logger)
        // Exit with the benchmark that started us, even when it is killed and cannot stop us itself.
        let parent = getppid()
        Thread.detachNewThread {
            while getppid() == parent { sleep(1) }
            Foundation.exit(0)
        }
        try await app.runService()
    }
}

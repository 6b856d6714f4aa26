import AsyncHTTPClient
import Foundation
import Logging
import SkaldCore
import SkaldEngine
import SkaldHTTP
import SkaldSQLite

/// Wires a store, the HTTP executor and an engine for the lifetime of `body`, shutting the HTTP client down after.
enum EngineHost {
    static func with<T>(
        store: any SagaStore, maxResponseBytes: Int, environment: [String: String] = ProcessInfo.processInfo.environment,
        participants: [String: ParticipantSettings] = [:], dataKey: DataKey? = nil, printer: ProgressPrinter,
        _ body: (Engine) async throws -> T
    ) async throws -> T {
        let configuration = EngineConfiguration(
            environment: environment, participants: participants, dataKey: dataKey,
            onEvents: { run, events in printer.handle(runID: run.id, events: events) })
        let client = StepHTTPClients(concurrency: configuration.concurrency)
        let engine = Engine(
            store: store, executor: HTTPStepExecutor(clients: client, maxResponseBytes: maxResponseBytes), configuration: configuration)
        do {
            let result = try await body(engine)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}

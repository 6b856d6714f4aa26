import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldHTTP
import SkaldServer
import Synchronization
import Testing
import SkaldTestSupport

/// Skald as a library: a program opens a database, builds one `SkaldService` and runs it in its own `ServiceGroup`,
/// as `skald serve` does, with nothing else to assemble.
@Suite(.timeLimit(.minutes(10))) struct EmbeddingTests {
    /// On PostgreSQL the program leaves the connection pool to the service (`.caller`): without the service running
    /// it, no query would be answered.
    @Test(arguments: DatabaseKind.tested)
    func aProgramRunsSkaldAsOneServiceAndStopsItGracefully(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            var settings = DatabaseSettings(location: try await kind.newDatabase())
            settings.pool = .caller
            let database = try await openDatabase(settings)
            let listening = Mutex<Int?>(nil)
            var configuration = ServerConfiguration()
            configuration.port = 0
            // Timeouts no busy test machine runs into: the run completes rather than compensates.
            configuration.sagas = [try DefinitionParser.parse(Array(DemoSagas.withLongTimeouts(DemoSagas.checkout).utf8))]
            configuration.pruneOlderThan = .seconds(7 * 86_400)
            configuration.onListening = { _, port in listening.withLock { $0 = port } }
            // Registered once the database can be used, before anything is served.
            let registered = Mutex<[Registration]>([])
            configuration.beforeServing = { service in
                let registrations = try await service.registerSagas().map(\.registration)
                registered.withLock { $0 = registrations }
            }
            let http = HTTPClient.makeForSteps()
            let service = SkaldService(
                database: database, executor: HTTPStepExecutor(client: http),
                engine: EngineConfiguration(environment: configuration.engineEnvironment(participants.environment)),
                configuration: configuration)

            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [service], logger: Logger(label: "embedding")))
            // A failure below leaves the task group, which cancels the service; the client is shut down either way.
            do {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    tasks.addTask { try await group.run() }
                    try await waitFor("the API to listen") { listening.withLock { $0 } != nil }
                    let port = try #require(listening.withLock { $0 })
                    #expect(registered.withLock { $0 } == [.registered])
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/runs")
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: #"{"saga": "checkout", "input": \#(DemoSagas.checkoutInput(orderId: "e-1").jsonText)}"#))
                    let response = try await http.execute(request, timeout: .seconds(30))
                    let created = try JSONParser.parse(String(buffer: try await response.body.collect(upTo: 1 << 20)))
                    #expect(response.status == .created, "\(created)")
                    let id = try #require(created["id"]?.stringValue)
                    try await waitFor("run \(id) to end") { try await database.run(id: id)?.state.status.isTerminal == true }
                    #expect(try await database.run(id: id)?.state.status == .completed)
                    // The caller's graceful shutdown reaches the service's own group: the API stops, the engine drains.
                    await group.triggerGracefulShutdown()
                    try await tasks.waitForAll()
                }
            } catch {
                try? await http.shutdown()
                throw error
            }
            try await http.shutdown()
            await database.close()
        }
    }
}

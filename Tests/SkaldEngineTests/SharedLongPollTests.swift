import Foundation
import SkaldCore
import SkaldEngine
import SkaldPostgres
import Synchronization
import Testing
import SkaldTestSupport

/// A long poll on one node for a run another node drives, on a shared PostgreSQL database.
@Suite(.serialized, .needs(.postgres), .timeLimit(.minutes(3))) struct SharedLongPollTests {
    func node(_ id: String, _ location: PostgresLocation, _ executor: ScriptedExecutor) async throws -> (Engine, PostgresStore) {
        let store = try await PostgresStore.open(location, node: id)
        // The lease is long: the manual clocks never renew it, and the test must not see a take-over. A run waiting
        // for its callback stays with its node (it is not parked), so node-a drives it when the callback comes.
        let engine = Engine(
            store: store, executor: executor, clock: ManualClock(),
            configuration: EngineConfiguration(
                environment: [:], jitterSample: { 1 }, node: NodeConfiguration(lease: .seconds(3600)),
                parking: ParkingPolicy(after: .seconds(86400)), publicURL: "http://127.0.0.1:7400"))
        return (engine, store)
    }

    /// Node B waits for the next events of a run node A drives; A stores them when the run's callback arrives, and
    /// its signal wakes B's wait. The clocks are manual, so no timeout or periodic read can end the wait instead.
    @Test func aLongPollOnAnotherNodeWakesWhenTheDrivingNodeStoresEvents() async throws {
        let location = try PostgresLocation(url: try await DatabaseKind.postgres.newDatabase())
        let executor = ScriptedExecutor()
        let (a, storeA) = try await node("node-a", location, executor)
        let (b, storeB) = try await node("node-b", location, executor)
        let servingA = Task { try await a.run() }
        let id = try await a.startRun(try saga(CallbackRunTests.webhook), input: [:])
        try await waitFor("node-a to drive the run until it waits for its callback") {
            try await storeA.run(id: id)?.state.steps[0].status == .waiting && a.drivesHere(id)
        }
        let servingB = Task { try await b.run() }
        let seen = try #require(try await storeB.events(runID: id, after: 0).last?.sequence)
        let answered = Shared<RunEvents?>(nil)
        let poll = Task {
            let events = try await b.events(runID: id, after: seen, wait: .seconds(3600))
            answered.withLock { $0 = events }
        }
        try await waitFor("node-b's long poll to wait") { b.notifier.runsWaitedOn == 1 }
        #expect(answered.value.map { _ in true } == nil, "the long poll answered before anything happened")
        let token = try #require(try await storeA.run(id: id)?.state.steps[0].wait?.token)
        guard case .stored = try await a.receiveCallback(token: token, signal: .succeeded(output: ["id": "ch_1"])) else {
            Issue.record("the callback was not stored")
            return
        }
        try await waitFor("node-b's long poll to answer") { answered.value.map { _ in true } == true }
        #expect(answered.value?.events.isEmpty == false)
        try await poll.value
        for task in [servingA, servingB] { task.cancel() }
        _ = await servingA.result
        _ = await servingB.result
        await storeA.shutdown()
        await storeB.shutdown()
    }
}

/// A value tasks share, behind a lock.
final class Shared<Value: Sendable>: Sendable {
    private let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
    var value: Value { state.withLock { $0 } }
    func withLock<T>(_ body: (inout Value) -> T) -> T { state.withLock { body(&$0) } }
}

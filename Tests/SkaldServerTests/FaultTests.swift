import AsyncHTTPClient
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldHTTP
import SkaldSQLite
import Synchronization
import Testing
@testable import SkaldServer
import SkaldTestSupport


/// Makes the real SQLite file refuse to store attempt outcomes, from another connection, the way a full disk
/// or a failing device would refuse them: the engine's own write fails inside SQLite.
struct StorageFault {
    let queue: DatabaseQueue

    init(path: String) throws {
        queue = try DatabaseQueue(path: path)
    }

    func start() throws {
        try queue.write { db in
            try db.execute(
                sql: "CREATE TRIGGER test_fault BEFORE UPDATE OF finished_at ON attempt BEGIN SELECT RAISE(ABORT, 'database or disk is full (simulated by the test)'); END")
        }
    }

    func stop() throws {
        try queue.write { db in try db.execute(sql: "DROP TRIGGER test_fault") }
    }
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct FaultTests {
    @Test func aFailedStoreGivesBackItsSlotsShowsInHealthAndTheRunCarriesOnOnceItWorks() async throws {
        // One attempt at a time: a slot that is not given back freezes every other run.
        try await Harness.with(concurrency: 1) { h in
            try await h.define()
            let fault = try StorageFault(path: try #require(h.sqlite).path)
            try fault.start()
            let (_, first) = try await h.call(.post, "/v1/runs", #"{"saga": "checkout", "input": \#(input(orderId: "o-1"))}"#)
            let firstID = try #require(first["id"]?.stringValue)
            try await waitFor("the health check to report the failing store") {
                try await h.call(.get, "/health").status == 503
            }
            let health = try await h.call(.get, "/health")
            #expect(health.json["status"] == "degraded")
            #expect(health.json["database"] == "failing")
            // The database's own words go to the log, not to anyone who can reach /health.
            #expect(health.json.jsonText.contains("simulated") == false)

            // The first run's slot came back: a second run is sent while the store still fails.
            let (_, second) = try await h.call(.post, "/v1/runs", #"{"saga": "checkout", "input": \#(input(orderId: "o-2"))}"#)
            let secondID = try #require(second["id"]?.stringValue)
            try await waitFor("the second run's first call to reach inventory") {
                await h.participants[.inventory].applicationsPerKey["\(secondID):reserve-stock:forward"] != nil
            }

            try fault.stop()
            let firstDone = try await h.waitUntilFinished(firstID)
            let secondDone = try await h.waitUntilFinished(secondID)
            #expect(firstDone["status"] == "completed")
            #expect(secondDone["status"] == "completed")
            #expect(try await h.call(.get, "/health").status == 200)
            // The long-poll notifier keeps nothing for finished runs.
            #expect(h.engine.notifier.trackedRuns == 0)
            // Sent again with the same key after the failure; applied once.
            let applied = await h.participants[.inventory].applicationsPerKey
            #expect(applied["\(firstID):reserve-stock:forward"] == 1)
            #expect(applied["\(secondID):reserve-stock:forward"] == 1)
            let attempts = try await h.store.attempts(runID: firstID)
            #expect(attempts.first { $0.key.stepName == "reserve-stock" }?.sends ?? 0 >= 2)
            #expect(attempts.allSatisfy { $0.key.number == 1 })
        }
    }

    @Test func twoOperatorActionsAtOnceNeverBothApply() async throws {
        let barrier = ReadBarrier()
        try await Harness.with(engineStore: { BarrierStore($0, barrier: barrier) }) { h in
            try await h.define()
            let id = try await h.compensationFailedRun()

            // Both actions read the run at the same moment if nothing serialises them.
            barrier.arm(parties: 2)
            async let retried = h.call(.post, "/v1/runs/\(id)/retry", #"{"note": "card service is back"}"#)
            async let resolved = h.call(.post, "/v1/runs/\(id)/resolve", #"{"step": "charge-card", "note": "refunded by hand"}"#)
            let statuses = [try await retried.status, try await resolved.status].sorted()
            #expect(statuses == [200, 409], "one action applies and the other is refused, not both: \(statuses)")
            let done = try await h.waitUntilFinished(id)
            #expect(done["status"] == "compensated")
            // Refunded by hand or by the retried call, never both.
            let history = try await h.call(.get, "/v1/runs/\(id)/events")
            let kinds = (history.json["events"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue }
            let refundedByCall = kinds.contains("compensation_retried")
            let refundedByHand = kinds.contains("compensation_resolved")
            #expect(refundedByCall != refundedByHand, "\(kinds)")
        }
    }

    @Test func hostileRequestsAreRefusedAndTheServerStaysUp() async throws {
        try await Harness.with { h in
            try await h.define()
            let id = try await h.finishedRun()
            // Used to trap converting the duration; now a wait longer than the limit is the longest wait.
            let long = try await h.call(.get, "/v1/runs/\(id)/events?wait=99999999999d")
            #expect(long.status == 200)
            let unknown = try await h.call(.get, "/v1/runs/anything/events?wait=99999999999d")
            #expect(unknown.status == 404)
            #expect(try await h.call(.get, "/v1/runs/\(id)/events?wait=-5").status == 422)

            // A cross-origin form can only send text/plain or form encodings: refused before anything happens.
            let form = try await h.client.execute(
                uri: "/v1/runs", method: .post, headers: [.contentType: "text/plain"],
                body: ByteBuffer(string: #"{"saga": "checkout", "input": \#(input())}"#)
            ) { Int($0.status.code) }
            #expect(form == 415)
            let bare = try await h.client.execute(uri: "/v1/runs/\(id)/cancel", method: .post, headers: [:], body: nil) {
                Int($0.status.code)
            }
            #expect(bare == 415)
            let page = try await h.call(.get, "/v1/runs")
            #expect(page.json["runs"]?.arrayValue?.count == 1)

            // A definition with a duration no clock can hold, a number beyond Double and too many steps: 422.
            let tooLong = checkoutText.replacingOccurrences(of: "\"timeout\": \"2s\"", with: "\"timeout\": \"9999999999h\"")
            let refused = try await h.call(.post, "/v1/definitions", tooLong)
            #expect(refused.status == 422)
            #expect(refused.json["error"]?["message"]?.stringValue?.contains("longer than the limit") == true)
            #expect(try await h.call(.post, "/v1/definitions", #"{"name": "n", "version": 1e400}"#).status == 400)
            #expect(try await h.call(.get, "/health").status == 200)
        }
    }

    @Test func aMethodARouteDoesNotHaveIs405WithAllowAndAnUnknownQueryParameterIs422() async throws {
        try await Harness.with { h in
            let method = try await h.client.execute(uri: "/v1/runs", method: .delete, headers: [:], body: nil) { response in
                (Int(response.status.code), response.headers[.allow])
            }
            #expect(method.0 == 405)
            #expect(method.1 == "GET, POST")
            let health = try await h.client.execute(uri: "/health", method: .init("TRACE")!, headers: [:], body: nil) { Int($0.status.code) }
            #expect(health == 405)
            let unknown = try await h.call(.get, "/v1/runs?limt=5")
            #expect(unknown.status == 422)
            #expect(unknown.json["error"]?["message"]?.stringValue?.contains("\"limt\"") == true)
            #expect(try await h.call(.get, "/v1/runs/x/events?after=-1").status == 422)
            #expect(try await h.call(.get, "/v1/nothing-here").status == 404)
        }
    }
}

extension FaultTests {
    @Test func aFailedRequestSaysWhereToLookButNotWhatWentWrongInside() async throws {
        try await Harness.with { h in
            try await h.define()
            let id = try await h.finishedRun()
            // Another process breaks the database under the server.
            let queue = try DatabaseQueue(path: try #require(h.sqlite).path)
            try await queue.write { db in try db.execute(sql: "DROP TABLE event") }
            let (status, json) = try await h.call(.get, "/v1/runs/\(id)/events")
            #expect(status == 500)
            #expect(json["error"]?["code"] == "internal")
            let message = json["error"]?["message"]?.stringValue ?? ""
            #expect(message.contains("reference"))
            #expect(!message.contains("no such table") && !message.contains("SQLite"), "the SQL error stays in the log: \(message)")
        }
    }
}

/// Holds readers of a run until `parties` of them have arrived (or a safety limit passes, so code that
/// serialises its readers is not held forever).
final class ReadBarrier: Sendable {
    private struct State {
        var parties = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func arm(parties: Int) { state.withLock { $0.parties = parties } }

    func arrive() async {
        guard state.withLock({ $0.parties > 0 }) else { return }
        let released = Task {
            try? await Task.sleep(for: .seconds(2))
            self.releaseAll()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let all = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
                state.waiting.append(continuation)
                guard state.waiting.count >= state.parties else { return nil }
                state.parties = 0
                defer { state.waiting.removeAll() }
                return state.waiting
            }
            for waiter in all ?? [] { waiter.resume() }
        }
        released.cancel()
    }

    private func releaseAll() {
        let all = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.parties = 0
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for waiter in all { waiter.resume() }
    }
}

/// The SQLite store, with every read of one run passing the barrier first.
final class BarrierStore: SagaStore {
    let inner: SQLiteStore
    let barrier: ReadBarrier

    init(_ inner: SQLiteStore, barrier: ReadBarrier) {
        self.inner = inner
        self.barrier = barrier
    }

    func run(id: String) async throws -> StoredRun? {
        let run = try await inner.run(id: id)
        await barrier.arrive()
        return run
    }

    func registerDefinition(_ definition: SagaDefinition, at: Date) async throws -> Registration {
        try await inner.registerDefinition(definition, at: at)
    }
    func definitions() async throws -> [StoredDefinition] { try await inner.definitions() }
    func definition(name: String, version: Int?) async throws -> StoredDefinition? { try await inner.definition(name: name, version: version) }
    func createRun(_ run: NewRun, transition: SagaMachine.Transition) async throws -> CreatedRun {
        try await inner.createRun(run, transition: transition)
    }
    func recordTransition(runID: String, at: Date, transition: SagaMachine.Transition) async throws {
        try await inner.recordTransition(runID: runID, at: at, transition: transition)
    }
    func recordAttemptStarted(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws {
        try await inner.recordAttemptStarted(attempt, at: at, transition: transition)
    }
    func recordAttemptResent(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws {
        try await inner.recordAttemptResent(attempt, at: at, transition: transition)
    }
    func recordAttemptFinished(_ result: AttemptResult, transition: SagaMachine.Transition) async throws {
        try await inner.recordAttemptFinished(result, transition: transition)
    }
    func unfinishedRuns() async throws -> [StoredRun] { try await inner.unfinishedRuns() }
    func park(runID: String, until: Date) async throws -> Bool { try await inner.park(runID: runID, until: until) }
    func unparkRuns(dueBy: Date, limit: Int) async throws -> [String] { try await inner.unparkRuns(dueBy: dueBy, limit: limit) }
    func receiveCallback(token: String, signal: CallbackSignal, at: Date) async throws -> CallbackReceipt {
        try await inner.receiveCallback(token: token, signal: signal, at: at)
    }
    func callbacks(runID: String) async throws -> [StoredCallback] { try await inner.callbacks(runID: runID) }
    func waitingSteps() async throws -> [WaitKind: Int] { try await inner.waitingSteps() }
    func listRuns(_ query: RunQuery) async throws -> RunPage { try await inner.listRuns(query) }
    func events(runID: String, after: Int64) async throws -> [StoredEvent] { try await inner.events(runID: runID, after: after) }
    func attempts(runID: String) async throws -> [AttemptRecord] { try await inner.attempts(runID: runID) }
    func runCounts() async throws -> [RunStatus: Int] { try await inner.runCounts() }
    func importRuns(events: [RunEvent], from next: @escaping @Sendable () throws -> ExportedRun?) async throws -> ImportedRuns {
        try await inner.importRuns(events: events, from: next)
    }
}

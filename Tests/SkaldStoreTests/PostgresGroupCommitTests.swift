import Foundation
import SkaldCore
import SkaldEngine
@testable import SkaldPostgres
import Synchronization
import Testing
import SkaldTestSupport

/// Group commit on PostgreSQL: the transitions of many runs go in one statement, fenced run by run.
@Suite(.serialized, .tags(.postgres), .needs(.postgres), .timeLimit(.minutes(5))) struct PostgresGroupCommitTests {
    func store(_ node: String, at location: PostgresLocation? = nil) async throws -> PostgresStore {
        var chosen = location
        if chosen == nil { chosen = try PostgresLocation(url: try await StoreKind.postgres.newDatabase()) }
        guard let location = chosen else { throw StoreError(.refused, "no database") }
        let store = try await PostgresStore.open(location, node: node)
        try await store.renewLease(for: .seconds(60))
        return store
    }

    /// Five runs write at once and their transitions leave in one batch. One run is another node's now, and another
    /// finishes an attempt it never started: each of those two is refused with its own error and leaves nothing
    /// behind, and the other three are stored by that one batch.
    @Test func aBatchStoresEveryRunItMayAndRefusesOnlyTheRunsThatMayNotWrite() async throws {
        let a = try await store("node-a")
        defer { Task { await a.shutdown() } }
        for id in ["R1", "R2", "R3", "R4", "R5"] {
            _ = try await a.createRun(newRun(id), transition: machine.start(runID: id, at: t0))
        }
        try await a.execute("UPDATE run SET owner = 'node-b' WHERE id = 'R3'")
        let begun = machine.beginAttempt(machine.start(runID: "R1", at: t0).state, step: 0, at: t0)
        let key: @Sendable (String, Int) -> AttemptKey = { id, number in AttemptKey(runID: id, step: 0, stepName: "a", phase: .forward, number: number) }

        a.transitionBatcher.pause()
        let outcomes = Shared<[String: String]>([:])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in ["R1", "R2", "R3", "R4"] {
                group.addTask {
                    let said: String
                    do {
                        try await a.recordAttemptStarted(key(id, 1), at: t0, transition: begun)
                        said = "stored"
                    } catch let error as RunOwnershipLost {
                        said = "lost to \(error.owner ?? "nobody")"
                    }
                    outcomes.withLock { $0[id] = said }
                }
            }
            group.addTask {
                let result = AttemptResult(
                    attempt: key("R5", 7), outcome: .succeeded(StepResponse(status: 200, body: .null)), duration: .zero, finishedAt: t0)
                do {
                    try await a.recordAttemptFinished(result, transition: begun)
                    outcomes.withLock { $0["R5"] = "stored" }
                } catch let error as StoreError {
                    outcomes.withLock { $0["R5"] = error.kind == .attemptNotInFlight ? "not in flight" : "\(error)" }
                }
            }
            try await waitFor("the five transitions to be queued") { a.transitionBatcher.queued == 5 }
            a.transitionBatcher.resume()
            try await group.waitForAll()
        }

        #expect(outcomes.value == ["R1": "stored", "R2": "stored", "R3": "lost to node-b", "R4": "stored", "R5": "not in flight"])
        #expect(a.transitionBatcher.statistics.batches == 1 && a.transitionBatcher.statistics.writes == 5, "\(a.transitionBatcher.statistics)")
        for id in ["R1", "R2", "R4"] {
            #expect(try await a.attempts(runID: id).map(\.key.number) == [1])
            #expect(try await a.events(runID: id).map(\.kind) == [.runStarted, .attemptStarted])
            #expect(try await a.run(id: id)?.state.steps[0].status == .running)
        }
        for id in ["R3", "R5"] {
            #expect(try await a.attempts(runID: id).isEmpty)
            #expect(try await a.events(runID: id).map(\.kind) == [.runStarted])
            #expect(try await a.run(id: id)?.state.steps[0].status == machine.start(runID: id, at: t0).state.steps[0].status)
        }
    }

    /// Runs started at the same moment are stored by one statement. Among them, one whose idempotency key an earlier
    /// run holds, and two that share a key: each of those is answered with the run that holds its key, and the
    /// others are created.
    @Test func runsStartedTogetherAreStoredTogetherAndAKeyAlreadyHeldIsAnsweredWithItsRun() async throws {
        let a = try await store("node-a")
        defer { Task { await a.shutdown() } }
        _ = try await a.createRun(newRun("R0", key: "order-0"), transition: machine.start(runID: "R0", at: t0))
        let before = a.creationBatcher.statistics
        a.creationBatcher.pause()
        let answers = Shared<[String: String]>([:])
        let starts: [(id: String, key: String?)] = [("R1", nil), ("R2", "order-0"), ("R3", "order-3"), ("R4", nil), ("R5", "order-3")]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (id, key) in starts {
                group.addTask {
                    let created = try await a.createRun(newRun(id, key: key), transition: machine.start(runID: id, at: t0))
                    let said: String
                    switch created {
                    case .created: said = "created"
                    case .existing(let run): said = "is \(run.id)"
                    }
                    answers.withLock { $0[id] = said }
                }
            }
            try await waitFor("the five starts to be queued") { a.creationBatcher.queued == 5 }
            a.creationBatcher.resume()
            try await group.waitForAll()
        }
        let said = answers.value
        #expect(said["R1"] == "created" && said["R4"] == "created" && said["R2"] == "is R0")
        // Of the two with one key, the first in the batch holds it.
        #expect((said["R3"] == "created" && said["R5"] == "is R3") || (said["R5"] == "created" && said["R3"] == "is R5"), "\(said)")
        #expect(a.creationBatcher.statistics.batches == before.batches + 1)
        for id in ["R1", "R4"] {
            #expect(try await a.events(runID: id).map(\.kind) == [.runStarted])
            #expect(try await a.run(id: id)?.state.steps.count == 2)
        }
        #expect(try await a.run(id: "R2") == nil, "a run refused for its key is not stored")
        #expect(try await a.listRuns(RunQuery(limit: 100)).runs.count == 4)
    }

    /// Two transitions of the same run never share a batch: they are stored one after the other, in order.
    @Test func aRunsTransitionsLeaveInTheirOwnBatchesInOrder() async throws {
        let a = try await store("node-a")
        defer { Task { await a.shutdown() } }
        let start = machine.start(runID: "R1", at: t0)
        _ = try await a.createRun(newRun("R1"), transition: start)
        let begun = machine.beginAttempt(start.state, step: 0, at: t0)
        let key = AttemptKey(runID: "R1", step: 0, stepName: "a", phase: .forward, number: 1)
        let answer = AttemptResult(
            attempt: key, outcome: .succeeded(StepResponse(status: 200, body: ["id": "a-1"])), duration: .milliseconds(3), finishedAt: t0)
        let finished = machine.finishAttempt(begun.state, step: 0, outcome: answer.outcome, duration: .milliseconds(3), at: t0, jitterSample: 0)
        a.transitionBatcher.pause()
        let first = Task { try await a.recordAttemptStarted(key, at: t0, transition: begun) }
        try await waitFor("the start to be queued") { a.transitionBatcher.queued == 1 }
        let second = Task { try await a.recordAttemptFinished(answer, transition: finished) }
        try await waitFor("the answer to be queued") { a.transitionBatcher.queued == 2 }
        a.transitionBatcher.resume()
        try await first.value
        try await second.value
        #expect(a.transitionBatcher.statistics.batches == 2)
        #expect(try await a.attempts(runID: "R1").first?.succeeded == true)
        #expect(try await a.run(id: "R1")?.state.steps[0].status == .succeeded)
    }

    /// The node that stores a run's events signals them, so a long poll on another node wakes without polling.
    @Test func storedEventsAreSignalledToTheOtherNodes() async throws {
        let a = try await store("node-a")
        defer { Task { await a.shutdown() } }
        let b = try await store("node-b", at: a.location)
        defer { Task { await b.shutdown() } }
        let heard = Shared<[String]>([])
        let listening = Shared(false)
        let listener = Task {
            try await b.listen { wake in
                switch wake {
                case .events(let runs): heard.withLock { $0 += runs }
                case .eventsMayBeMissed: listening.withLock { $0 = true }
                default: break
                }
            }
        }
        defer { listener.cancel() }
        try await waitFor("node-b to listen") { listening.value }
        let start = machine.start(runID: "R1", at: t0)
        _ = try await a.createRun(newRun("R1"), transition: start)
        let key = AttemptKey(runID: "R1", step: 0, stepName: "a", phase: .forward, number: 1)
        try await a.recordAttemptStarted(key, at: t0, transition: machine.beginAttempt(start.state, step: 0, at: t0))
        try await waitFor("node-b to hear of R1's new events") { heard.value == ["R1"] }
    }
}

/// A value tasks share, behind a lock.
final class Shared<Value: Sendable>: Sendable {
    private let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
    var value: Value { state.withLock { $0 } }
    func withLock<T>(_ body: (inout Value) -> T) -> T { state.withLock { body(&$0) } }
}

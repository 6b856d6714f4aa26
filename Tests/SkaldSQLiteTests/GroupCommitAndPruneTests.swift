import Foundation
import GRDB
import SkaldCore
import SkaldEngine
import Testing
@testable import SkaldSQLite
import SkaldTestSupport

@Suite(.timeLimit(.minutes(10))) struct GroupCommitTests {
    /// Starts `count` runs, one transaction each, and returns the machine and each run's started state.
    func startRuns(_ count: Int, in store: SQLiteStore) async throws -> (SagaMachine, [SagaMachine.Transition]) {
        let machine = SagaMachine(saga: definition)
        var starts: [SagaMachine.Transition] = []
        for number in 0..<count {
            let start = machine.start(runID: "R\(number)", at: t0)
            _ = try await store.createRun(NewRun(id: "R\(number)", definition: definition, input: [:], createdAt: t0), transition: start)
            starts.append(start)
        }
        return (machine, starts)
    }

    @Test func transitionsQueuedTogetherShareOneCommitAndEachCallerReturnsOnlyOnceItIsStored() async throws {
        let store = try SQLiteStore(path: try temporaryDatabase())
        let (machine, starts) = try await startRuns(20, in: store)
        let before = store.commitStatistics
        store.committer.pause()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (number, start) in starts.enumerated() {
                group.addTask {
                    let begun = machine.beginAttempt(start.state, step: 0, at: t0)
                    let key = AttemptKey(runID: "R\(number)", step: 0, stepName: "a", phase: .forward, number: 1)
                    try await store.recordAttemptStarted(key, at: t0, transition: begun)
                    // Returning means committed: a fresh connection sees the attempt.
                    let attempts = try await SQLiteStore(path: store.path).attempts(runID: "R\(number)")
                    #expect(attempts.count == 1)
                }
            }
            try await waitFor("20 writes queued") { store.committer.queued == 20 }
            // Nothing is stored while the writer is held, so no caller can have gone on.
            #expect(try await store.attempts(runID: "R0").isEmpty)
            store.committer.resume()
            try await group.waitForAll()
        }
        let after = store.commitStatistics
        #expect(after.transactions - before.transactions == 1)
        #expect(after.transitions - before.transitions == 20)
    }

    @Test func aTransitionThatFailsInABatchFailsAloneAndLeavesNothingHalfDone() async throws {
        let store = try SQLiteStore(path: try temporaryDatabase())
        let (machine, starts) = try await startRuns(3, in: store)
        store.committer.pause()
        try await withThrowingTaskGroup(of: (String, Bool).self) { group in
            for (number, start) in starts.enumerated() {
                group.addTask {
                    let begun = machine.beginAttempt(start.state, step: 0, at: t0)
                    let key = AttemptKey(runID: "R\(number)", step: 0, stepName: "a", phase: .forward, number: 1)
                    try await store.recordAttemptStarted(key, at: t0, transition: begun)
                    return ("R\(number)", true)
                }
            }
            // An outcome for an attempt that was never recorded as sent: the store refuses it.
            group.addTask {
                let begun = machine.beginAttempt(starts[1].state, step: 0, at: t0)
                let outcome = AttemptOutcome.succeeded(StepResponse(status: 200, body: .null))
                let finished = machine.finishAttempt(begun.state, step: 0, outcome: outcome, duration: .zero, at: t0, jitterSample: 0)
                let stray = AttemptKey(runID: "R1", step: 0, stepName: "a", phase: .forward, number: 7)
                do {
                    try await store.recordAttemptFinished(
                        AttemptResult(attempt: stray, outcome: outcome, duration: .zero, finishedAt: t0), transition: finished)
                    return ("stray", true)
                } catch {
                    return ("stray", false)
                }
            }
            try await waitFor("4 writes queued") { store.committer.queued == 4 }
            store.committer.resume()
            var results: [String: Bool] = [:]
            for try await (name, stored) in group { results[name] = stored }
            #expect(results == ["R0": true, "R1": true, "R2": true, "stray": false])
        }
        for number in 0..<3 {
            let run = try #require(try await store.run(id: "R\(number)"))
            #expect(run.state.steps[0].isInFlight, "R\(number)'s attempt is stored as sent")
            #expect(run.state.steps[0].status == .running, "the refused outcome left no trace on R\(number)")
            #expect(try await store.events(runID: "R\(number)").map(\.kind) == [.runStarted, .attemptStarted])
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct PruneTests {
    @Test func prunesOnlyOldCompletedAndCompensatedRunsWithTheirHistoryInBatches() async throws {
        let store = try SQLiteStore(path: try temporaryDatabase())
        let machine = SagaMachine(saga: definition)
        let old = t0
        let recent = t0.addingTimeInterval(7 * 86_400)
        func create(_ id: String, status: RunStatus, at date: Date) async throws {
            var start = machine.start(runID: id, at: date)
            _ = try await store.createRun(NewRun(id: id, definition: definition, input: [:], createdAt: date), transition: start)
            let begun = machine.beginAttempt(start.state, step: 0, at: date)
            try await store.recordAttemptStarted(
                AttemptKey(runID: id, step: 0, stepName: "a", phase: .forward, number: 1), at: date, transition: begun)
            start = begun
            start.state.status = status
            start.events = [RunEvent(at: date, kind: .runCompleted, message: "set by the test")]
            start.changedSteps = []
            try await store.recordTransition(runID: id, at: date, transition: start)
        }
        try await create("old-completed", status: .completed, at: old)
        try await create("old-compensated", status: .compensated, at: old)
        try await create("old-completed-2", status: .completed, at: old)
        try await create("old-failed", status: .compensationFailed, at: old)
        try await create("old-stuck", status: .stuck, at: old)
        try await create("old-running", status: .running, at: old)
        try await create("recent-completed", status: .completed, at: recent)

        let deleted = try await store.prune(finishedBefore: old.addingTimeInterval(86_400), batchSize: 2)
        #expect(deleted == 3)
        let left = try await store.listRuns(RunQuery(limit: 100)).runs.map(\.id).sorted()
        #expect(left == ["old-failed", "old-running", "old-stuck", "recent-completed"])
        let orphans = try await store.pool.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT (SELECT count(*) FROM event WHERE run_id NOT IN (SELECT id FROM run))
                         + (SELECT count(*) FROM step WHERE run_id NOT IN (SELECT id FROM run))
                         + (SELECT count(*) FROM attempt WHERE run_id NOT IN (SELECT id FROM run))
                    """)
        }
        #expect(orphans == 0, "steps, attempts and history go with their run")
        #expect(try await store.events(runID: "old-failed").count == 3)
        #expect(try await store.prune(finishedBefore: old.addingTimeInterval(86_400)) == 0)
    }
}

import Foundation
import GRDB
import SkaldCore
import SkaldEngine
import Testing
@testable import SkaldSQLite
import SkaldTestSupport

/// A fresh folder for one test's database file.
func temporaryDatabase() throws -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("skald-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder.appendingPathComponent("skald.sqlite").path
}

let definition = try! DefinitionParser.parse(Array("""
    { "name": "pair", "version": 1, "steps": [
        { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" },
          "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a/{{steps.a.response.body.id}}" } },
        { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b" } } ] }
    """.utf8))

let t0 = Date(timeIntervalSince1970: 1_800_000_000)

@Suite(.timeLimit(.minutes(10))) struct SQLiteStoreTests {
    @Test func storesAndReloadsEveryTransition() async throws {
        let path = try temporaryDatabase()
        let machine = SagaMachine(saga: definition)
        let input: JSONValue = ["sku": "S1", "n": 2]
        do {
            let store = try SQLiteStore(path: path)
            let start = machine.start(runID: "R1", at: t0)
            _ = try await store.createRun(NewRun(id: "R1", definition: definition, input: input, createdAt: t0), transition: start)
            let begun = machine.beginAttempt(start.state, step: 0, at: t0)
            let key = AttemptKey(runID: "R1", step: 0, stepName: "a", phase: .forward, number: 1)
            try await store.recordAttemptStarted(key, at: t0, transition: begun)
            let outcome = AttemptOutcome.succeeded(StepResponse(status: 201, body: ["id": "res-1", "n": 2.5]))
            let finished = machine.finishAttempt(begun.state, step: 0, outcome: outcome, duration: .milliseconds(12), at: t0, jitterSample: 0)
            try await store.recordAttemptFinished(
                AttemptResult(attempt: key, outcome: outcome, duration: .milliseconds(12), finishedAt: t0), transition: finished)
        }
        // A new store on the same file: what a restarted process sees.
        let reopened = try SQLiteStore(path: path)
        let run = try #require(try await reopened.run(id: "R1"))
        #expect(run.input == input)
        #expect(run.definitionHash == definition.contentHash)
        #expect(try DefinitionParser.parse(run.definitionDocument).contentHash == definition.contentHash)
        #expect(run.state.steps[0].status == .succeeded)
        #expect(run.state.steps[0].response == StepResponse(status: 201, body: ["id": "res-1", "n": 2.5]))
        #expect(run.state.steps[1].status == .running)
        #expect(run.state.steps[1].dueAt == t0)
        #expect(try await reopened.unfinishedRuns().map(\.id) == ["R1"])
        let kinds = try await reopened.events(runID: "R1").map(\.kind)
        #expect(kinds == [.runStarted, .attemptStarted, .attemptSucceeded, .stepSucceeded])
        let attempts = try await reopened.attempts(runID: "R1")
        #expect(attempts.count == 1)
        #expect(attempts[0].succeeded == true)
        #expect(attempts[0].httpStatus == 201)
        #expect(attempts[0].durationMs == 12)
    }

    @Test func theSameDefinitionIsStoredOnceAcrossRuns() async throws {
        let store = try SQLiteStore(path: try temporaryDatabase())
        let machine = SagaMachine(saga: definition)
        for id in ["R1", "R2"] {
            _ = try await store.createRun(NewRun(id: id, definition: definition, input: [:], createdAt: t0), transition: machine.start(runID: id, at: t0))
        }
        let count = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM definition") }
        #expect(count == 1)
    }

    @Test func aDuplicateRunIdIsRefusedWithoutChangingTheFirst() async throws {
        let store = try SQLiteStore(path: try temporaryDatabase())
        let machine = SagaMachine(saga: definition)
        _ = try await store.createRun(NewRun(id: "R1", definition: definition, input: ["v": 1], createdAt: t0), transition: machine.start(runID: "R1", at: t0))
        await #expect(throws: (any Error).self) {
            try await store.createRun(NewRun(id: "R1", definition: definition, input: ["v": 2], createdAt: t0), transition: machine.start(runID: "R1", at: t0))
        }
        #expect(try await store.run(id: "R1")?.input == ["v": 1])
        #expect(try await store.events(runID: "R1").count == 1)
    }

    @Test func theHistoryIsAppendOnly() async throws {
        let store = try SQLiteStore(path: try temporaryDatabase())
        let machine = SagaMachine(saga: definition)
        _ = try await store.createRun(NewRun(id: "R1", definition: definition, input: [:], createdAt: t0), transition: machine.start(runID: "R1", at: t0))
        await #expect(throws: DatabaseError.self) {
            try await store.pool.write { db in try db.execute(sql: "UPDATE event SET message = 'rewritten'") }
        }
    }

    /// A database written before unknown outcomes and abandon (schema v3) is upgraded in place: its runs, steps,
    /// attempts and history are kept, and the new states can be stored.
    @Test func aV3DatabaseIsUpgradedWithEverythingKept() async throws {
        let path = try temporaryDatabase()
        do {
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(queue, upTo: "v3-semantics")
            try await queue.write { db in
                try db.execute(
                    sql: "INSERT INTO definition (hash, name, version, document, created_at, registered) VALUES (?, 'pair', 1, ?, 0, 1)",
                    arguments: [definition.contentHash, definition.documentText])
                try db.execute(sql: """
                    INSERT INTO run (id, definition_hash, saga_name, saga_version, status, input, failure_step, failure_reason, created_at, updated_at)
                    VALUES ('R1', ?, 'pair', 1, 'compensating', '{}', 'b', 'HTTP 402', 0, 0)
                    """, arguments: [definition.contentHash])
                try db.execute(sql: """
                    INSERT INTO step (run_id, position, name, status, attempts, compensation_attempts, due_at, response_status, response_body, last_error)
                    VALUES ('R1', 0, 'a', 'compensating', 1, 0, 5, 201, '{"id":"res-1"}', NULL),
                           ('R1', 1, 'b', 'failed', 2, 0, NULL, NULL, NULL, 'HTTP 402')
                    """)
                try db.execute(sql: "INSERT INTO attempt (run_id, position, phase, number, step_name, started_at) VALUES ('R1', 0, 'forward', 1, 'a', 0)")
                try db.execute(sql: "INSERT INTO event (run_id, at, kind, message, data) VALUES ('R1', 0, 'run_started', 'started', '{}')")
            }
        }
        let store = try SQLiteStore(path: path)
        let run = try #require(try await store.run(id: "R1"))
        #expect(run.state.status == .compensating)
        #expect(run.state.steps.map(\.status) == [.compensating, .failed])
        #expect(run.state.steps[0].response == StepResponse(status: 201, body: ["id": "res-1"]))
        #expect(run.state.steps.allSatisfy { !$0.outcomeUnknown })
        #expect(run.state.failure == RunFailure(step: "b", reason: "HTTP 402"))
        #expect(try await store.events(runID: "R1").count == 1)
        #expect(try await store.attempts(runID: "R1").count == 1)
        // The new states are accepted by the rebuilt tables.
        var state = run.state
        state.steps[1].status = .outcomeUnknown
        state.steps[1].outcomeUnknown = true
        try await store.recordTransition(runID: "R1", at: t0, transition: SagaMachine.Transition(state: state, events: []))
        let abandoned = try #require(SagaMachine(saga: definition).abandon(state, note: "settled", at: t0))
        try await store.recordTransition(runID: "R1", at: t0, transition: abandoned)
        let reloaded = try #require(try await store.run(id: "R1"))
        #expect(reloaded.state.status == .abandoned)
        #expect(reloaded.state.steps[1].status == .outcomeUnknown && reloaded.state.steps[1].outcomeUnknown)
        let integrity = try await store.pool.read { db in try String.fetchAll(db, sql: "PRAGMA foreign_key_check") }
        #expect(integrity.isEmpty)
    }

    /// v6 rebuilt run and step without their status CHECK lists: a new state needs no rebuild, and the stores check
    /// statuses where they read them.
    @Test func aV5DatabaseLosesItsStatusListsWithEveryRowKept() async throws {
        let path = try temporaryDatabase()
        do {
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(queue, upTo: "v5-trace-context")
            try await queue.write { db in
                try db.execute(
                    sql: "INSERT INTO definition (hash, name, version, document, created_at, registered) VALUES (?, 'pair', 1, ?, 0, 1)",
                    arguments: [definition.contentHash, definition.documentText])
                try db.execute(sql: """
                    INSERT INTO run (id, definition_hash, saga_name, saga_version, status, input, compensation_failure_step,
                        compensation_failure_reason, created_at, updated_at, idempotency_key, deadline_at, trace_parent, trace_state)
                    VALUES ('R1', ?, 'pair', 1, 'compensation_failed', '{"sku":"S1"}', 'a', 'HTTP 500', 1, 2, 'order-1', 99,
                        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'congo=t61')
                    """, arguments: [definition.contentHash])
                try db.execute(sql: """
                    INSERT INTO step (run_id, position, name, status, attempts, compensation_attempts, due_at, response_status, response_body,
                        last_error, compensation_attempts_base, attempts_base, first_attempt_at, compensation_first_attempt_at, outcome_unknown)
                    VALUES ('R1', 0, 'a', 'compensation_failed', 1, 3, NULL, 201, '{"id":"res-1"}', 'HTTP 500', 1, 0, 3, 4, 0),
                           ('R1', 1, 'b', 'outcome_unknown', 2, 0, NULL, NULL, NULL, 'no answer', 0, 0, 5, NULL, 1)
                    """)
                try db.execute(sql: "INSERT INTO attempt (run_id, position, phase, number, step_name, started_at) VALUES ('R1', 0, 'forward', 1, 'a', 0)")
                for n in 1...3 {
                    try db.execute(sql: "INSERT INTO event (run_id, at, kind, message, data) VALUES ('R1', ?, 'run_started', 'e', '{}')", arguments: [n])
                }
                try db.execute(sql: "DELETE FROM event WHERE id = 3")
            }
        }
        let store = try SQLiteStore(path: path)
        let run = try #require(try await store.run(id: "R1"))
        #expect(run.state.status == .compensationFailed)
        #expect(run.state.compensationFailure == RunFailure(step: "a", reason: "HTTP 500"))
        #expect(run.state.deadlineAt == Date(timeIntervalSince1970: 99))
        #expect(run.idempotencyKey == "order-1" && run.trace?.state == "congo=t61" && run.input == ["sku": "S1"])
        #expect(run.createdAt == Date(timeIntervalSince1970: 1) && run.updatedAt == Date(timeIntervalSince1970: 2))
        #expect(run.state.steps.map(\.status) == [.compensationFailed, .outcomeUnknown])
        #expect(run.state.steps[0].response == StepResponse(status: 201, body: ["id": "res-1"]))
        #expect(run.state.steps[0].compensationAttempts == 3 && run.state.steps[0].compensationAttemptsBase == 1)
        #expect(run.state.steps[0].firstAttemptAt == Date(timeIntervalSince1970: 3))
        #expect(run.state.steps[0].compensationFirstAttemptAt == Date(timeIntervalSince1970: 4))
        #expect(run.state.steps[1].outcomeUnknown && run.state.steps[1].lastError == "no answer")
        #expect(run.state.steps.allSatisfy { $0.resolution == nil })
        #expect(try await store.events(runID: "R1").count == 2)
        #expect(try await store.attempts(runID: "R1").count == 1)
        let tables = try await store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name IN ('run', 'step')")
        }
        #expect(tables.count == 2 && tables.allSatisfy { !$0.contains("CHECK (status") }, "\(tables)")

        // The operator resolves a's compensation: a state the v5 tables did not allow, with who, what and when.
        let resolved = try #require(SagaMachine(saga: definition).resolve(run.state, step: "a", note: "released by hand", by: "ana", at: t0))
        try await store.recordTransition(runID: "R1", at: t0, transition: resolved)
        let reloaded = try #require(try await store.run(id: "R1"))
        #expect(reloaded.state.steps[0].status == .compensationResolved)
        #expect(reloaded.state.steps[0].resolution == StepResolution(by: "ana", note: "released by hand", at: t0))
        #expect(reloaded.state.status == .compensated)
        // The indexes came back: the idempotency key is still unique, and the event ids carry on after the last one.
        let clash = NewRun(id: "R2", definition: definition, input: [:], createdAt: t0, idempotencyKey: "order-1")
        if case .created = try await store.createRun(clash, transition: SagaMachine(saga: definition).start(runID: "R2", at: t0)) {
            Issue.record("a second run with the idempotency key order-1 was created")
        }
        let indexes = try await store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'run' AND sql IS NOT NULL ORDER BY name")
        }
        #expect(indexes == ["run_idempotency_key", "run_parked", "run_saga", "run_status_id", "run_unfinished"])
        // A status no version of Skald writes is refused where it is read, naming it.
        try await store.pool.write { db in try db.execute(sql: "UPDATE step SET status = 'teleported' WHERE run_id = 'R1' AND position = 1") }
        await #expect(throws: (any Error).self) { try await store.run(id: "R1") }
        let integrity = try await store.pool.read { db in try String.fetchAll(db, sql: "PRAGMA foreign_key_check") }
        #expect(integrity.isEmpty)
    }

    @Test func aDatabaseFromANewerSkaldIsRefusedAndLeftUntouched() async throws {
        let path = try temporaryDatabase()
        do {
            let store = try SQLiteStore(path: path)
            let machine = SagaMachine(saga: definition)
            _ = try await store.createRun(NewRun(id: "R1", definition: definition, input: [:], createdAt: t0), transition: machine.start(runID: "R1", at: t0))
            try await store.pool.write { db in
                try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
            }
        }
        #expect {
            _ = try SQLiteStore(path: path)
        } throws: { error in
            let message = "\(error)"
            return message.contains("newer version of Skald") && message.contains("v99-from-the-future") && message.contains(path)
        }
        let queue = try DatabaseQueue(path: path)
        let runs = try await queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM run") }
        #expect(runs == 1)
    }

    @Test func aPathThatCannotBeWrittenNamesThePathAndTheFix() throws {
        let path = "/proc/skald-cannot-exist/skald.sqlite"
        #expect {
            _ = try SQLiteStore(path: path)
        } throws: { error in
            let message = "\(error)"
            return message.contains(path) && message.contains("--db") && message.contains("SKALD_DB")
        }
        let notADatabase = try temporaryDatabase()
        try Data("this is not sqlite, just text that is long enough to have a header".utf8).write(to: URL(fileURLWithPath: notADatabase))
        #expect {
            _ = try SQLiteStore(path: notADatabase)
        } throws: { error in
            "\(error)".contains("not a SQLite database")
        }
    }

    @Test func usesWALWithTheChosenSynchronousLevel() async throws {
        let normal = try SQLiteStore(path: try temporaryDatabase())
        let full = try SQLiteStore(path: try temporaryDatabase(), durability: .full)
        #expect(try await normal.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try await normal.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 1)
        #expect(try await full.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
    }
}

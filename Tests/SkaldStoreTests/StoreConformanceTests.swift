import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldPostgres
import SkaldSQLite
import Testing
import SkaldTestSupport

/// The stores Skald ships. Every test here runs against each, on a real SQLite file and a real PostgreSQL server
/// (a throwaway cluster on 127.0.0.1, started once for the test process).
typealias StoreKind = DatabaseKind

extension DatabaseKind {
    /// Opens the database (as a restarted process would), runs `body`, then closes the store.
    func with<T: Sendable>(_ location: String, _ body: (any SagaStore) async throws -> T) async throws -> T {
        try await DatabaseKind.withStore(location, body)
    }
}

let definition = try! DefinitionParser.parse(Array("""
    { "name": "pair", "version": 1, "steps": [
        { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" },
          "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a/{{steps.a.idempotencyKey}}" } },
        { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b" } } ] }
    """.utf8))

let t0 = Date(timeIntervalSince1970: 1_800_000_000)
let machine = SagaMachine(saga: definition)

func newRun(_ id: String, input: JSONValue = [:], key: String? = nil, at: Date = t0) -> NewRun {
    NewRun(id: id, definition: definition, input: input, createdAt: at, idempotencyKey: key)
}

/// Stores `run` (of `definition`) as far as this: a succeeds with a response, then b times out, so b's outcome is
/// unknown and the run is compensating (a is due to be undone).
func storeATimedOutRun(_ run: NewRun, in store: any SagaStore) async throws {
    let id = run.id
    let start = machine.start(runID: id, at: t0)
    _ = try await store.createRun(run, transition: start)
    let begun = machine.beginAttempt(start.state, step: 0, at: t0)
    let key = AttemptKey(runID: id, step: 0, stepName: "a", phase: .forward, number: 1)
    try await store.recordAttemptStarted(key, at: t0, transition: begun)
    let outcome = AttemptOutcome.succeeded(StepResponse(status: 201, body: ["id": "res-1", "n": 2.5]))
    let finished = machine.finishAttempt(begun.state, step: 0, outcome: outcome, duration: .milliseconds(12), at: t0, jitterSample: 0)
    try await store.recordAttemptFinished(
        AttemptResult(attempt: key, outcome: outcome, duration: .milliseconds(12), finishedAt: t0), transition: finished)
    let second = machine.beginAttempt(finished.state, step: 1, at: t0)
    let secondKey = AttemptKey(runID: id, step: 1, stepName: "b", phase: .forward, number: 1)
    try await store.recordAttemptStarted(secondKey, at: t0, transition: second)
    let timedOut = AttemptOutcome.failed(AttemptFailure(kind: .timeout, reason: "no complete response within 1s", isRetryable: false))
    let failed = machine.finishAttempt(second.state, step: 1, outcome: timedOut, duration: .seconds(1), at: t0, jitterSample: 0)
    try await store.recordAttemptFinished(
        AttemptResult(attempt: secondKey, outcome: timedOut, duration: .seconds(1), finishedAt: t0), transition: failed)
}

@Suite(.serialized, .tags(.postgres), .timeLimit(.minutes(10))) struct StoreConformanceTests {
    @Test(arguments: StoreKind.tested)
    func storesAndReloadsEveryTransition(kind: StoreKind) async throws {
        let location = try await kind.newDatabase()
        let input: JSONValue = ["sku": "S1", "n": 2, "big": .bigInteger("123456789012345678901234567890")]
        try await kind.with(location) { store in
            try await storeATimedOutRun(newRun("R1", input: input), in: store)
        }
        // A new store on the same database: what a restarted process sees.
        try await kind.with(location) { store in
            let run = try #require(try await store.run(id: "R1"))
            #expect(run.input == input)
            #expect(run.definitionHash == definition.contentHash)
            #expect(try DefinitionParser.parse(run.definitionDocument).contentHash == definition.contentHash)
            #expect(run.state.status == .compensating)
            #expect(run.state.failure == RunFailure(step: "b", reason: "no complete response within 1s"))
            #expect(run.state.steps[0].status == .compensating)
            #expect(run.state.steps[0].response == StepResponse(status: 201, body: ["id": "res-1", "n": 2.5]))
            #expect(run.state.steps[0].dueAt == t0)
            #expect(run.state.steps[1].status == .outcomeUnknown)
            #expect(run.state.steps[1].outcomeUnknown)
            #expect(run.state.steps[1].lastError == "no complete response within 1s")
            #expect(try await store.unfinishedRuns().map(\.id) == ["R1"])
            let kinds = try await store.events(runID: "R1").map(\.kind)
            #expect(kinds.prefix(4) == [.runStarted, .attemptStarted, .attemptSucceeded, .stepSucceeded])
            #expect(kinds.suffix(2) == [.stepFailed, .compensationStarted])
            let after = try await store.events(runID: "R1", after: 0)
            #expect(try await store.events(runID: "R1", after: after[1].sequence).count == after.count - 2)
            let attempts = try await store.attempts(runID: "R1")
            #expect(attempts.count == 2)
            #expect(attempts[0].succeeded == true && attempts[0].httpStatus == 201 && attempts[0].durationMs == 12)
            #expect(attempts[1].succeeded == false && attempts[1].error == "no complete response within 1s")
        }
    }

    @Test(arguments: StoreKind.tested)
    func anAttemptSentAgainCountsItsSendsAndOnlyAnAttemptInFlightCanBe(kind: StoreKind) async throws {
        try await kind.with(try await kind.newDatabase()) { store in
            let start = machine.start(runID: "R1", at: t0)
            _ = try await store.createRun(newRun("R1"), transition: start)
            let begun = machine.beginAttempt(start.state, step: 0, at: t0)
            let key = AttemptKey(runID: "R1", step: 0, stepName: "a", phase: .forward, number: 1)
            try await store.recordAttemptStarted(key, at: t0, transition: begun)
            let resent = machine.resendInterruptedAttempt(begun.state, step: 0, at: t0.addingTimeInterval(5))
            try await store.recordAttemptResent(key, at: t0.addingTimeInterval(5), transition: resent)
            #expect(try await store.attempts(runID: "R1").first?.sends == 2)
            let other = AttemptKey(runID: "R1", step: 0, stepName: "a", phase: .forward, number: 7)
            // Each refusal has its kind, the same on every store (PostgreSQL's comes from its own SQLSTATE).
            let resentOther = await #expect(throws: StoreError.self) { try await store.recordAttemptResent(other, at: t0, transition: resent) }
            #expect(resentOther?.kind == .attemptNotInFlight)
            #expect(resentOther?.message == "run R1: attempt 7 of a (forward) is not stored as in flight")
            let result = AttemptResult(attempt: other, outcome: .succeeded(StepResponse(status: 200, body: .null)), duration: .zero, finishedAt: t0)
            let finishedOther = await #expect(throws: StoreError.self) { try await store.recordAttemptFinished(result, transition: resent) }
            #expect(finishedOther?.kind == .attemptNotInFlight)
            let unknown = await #expect(throws: StoreError.self) { try await store.recordTransition(runID: "NOPE", at: t0, transition: resent) }
            #expect(unknown?.kind == .unknownRun)
            // Nothing of the refused writes was kept.
            #expect(try await store.events(runID: "R1").map(\.kind) == [.runStarted, .attemptStarted, .attemptResent])
        }
    }

    @Test(arguments: StoreKind.tested)
    func anIdempotencyKeyReturnsTheFirstRunEvenWhenStartsRace(kind: StoreKind) async throws {
        try await kind.with(try await kind.newDatabase()) { store in
            let first = try await store.createRun(newRun("R1", input: ["v": 1], key: "order-7"), transition: machine.start(runID: "R1", at: t0))
            guard case .created = first else { Issue.record("expected a new run"); return }
            let again = try await store.createRun(newRun("R2", input: ["v": 2], key: "order-7"), transition: machine.start(runID: "R2", at: t0))
            guard case .existing(let existing) = again else { Issue.record("expected the first run"); return }
            #expect(existing.id == "R1")
            #expect(existing.input == ["v": 1])
            // Ten starts with one key at the same moment: one run.
            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        switch try await store.createRun(newRun("S\(index)", key: "race"), transition: machine.start(runID: "S\(index)", at: t0)) {
                        case .created: "S\(index)"
                        case .existing(let run): run.id
                        }
                    }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(outcomes.count == 1)
            #expect(try await store.listRuns(RunQuery(idempotencyKey: "race")).runs.count == 1)
        }
    }

    @Test(arguments: StoreKind.tested)
    func aDuplicateRunIdIsRefusedWithoutChangingTheFirst(kind: StoreKind) async throws {
        try await kind.with(try await kind.newDatabase()) { store in
            _ = try await store.createRun(newRun("R1", input: ["v": 1]), transition: machine.start(runID: "R1", at: t0))
            await #expect(throws: (any Error).self) {
                try await store.createRun(newRun("R1", input: ["v": 2]), transition: machine.start(runID: "R1", at: t0))
            }
            #expect(try await store.run(id: "R1")?.input == ["v": 1])
            #expect(try await store.events(runID: "R1").count == 1)
            #expect(try await store.run(id: "NOPE") == nil)
        }
    }

    @Test(arguments: StoreKind.tested)
    func definitionsAreRegisteredOncePerNameAndVersion(kind: StoreKind) async throws {
        try await kind.with(try await kind.newDatabase()) { store in
            #expect(try await store.registerDefinition(definition, at: t0) == .registered)
            #expect(try await store.registerDefinition(definition, at: t0) == .alreadyRegistered)
            let changed = try DefinitionParser.parse(Array(definition.documentText.replacingOccurrences(of: "/b\"", with: "/bb\"").utf8))
            #expect(try await store.registerDefinition(changed, at: t0) == .conflict(existingHash: definition.contentHash))
            let v2 = try DefinitionParser.parse(Array(definition.documentText.replacingOccurrences(of: "\"version\":1", with: "\"version\":2").utf8))
            #expect(try await store.registerDefinition(v2, at: t0.addingTimeInterval(1)) == .registered)
            #expect(try await store.definitions().map(\.version) == [1, 2])
            #expect(try await store.definition(name: "pair", version: nil)?.version == 2)
            #expect(try await store.definition(name: "pair", version: 1)?.hash == definition.contentHash)
            #expect(try await store.definition(name: "nope", version: nil) == nil)
        }
    }

    @Test(arguments: StoreKind.tested)
    func runsAreListedNewestFirstWithFiltersAndPages(kind: StoreKind) async throws {
        try await kind.with(try await kind.newDatabase()) { store in
            for index in 1...5 {
                let id = "R\(index)"
                _ = try await store.createRun(
                    newRun(id, key: index == 3 ? "k3" : nil, at: t0.addingTimeInterval(Double(index))), transition: machine.start(runID: id, at: t0))
            }
            let state = try #require(try await store.run(id: "R2")).state
            try await store.recordTransition(runID: "R2", at: t0, transition: try #require(machine.abandon(state, note: "settled", at: t0)))
            let first = try await store.listRuns(RunQuery(limit: 2))
            #expect(first.runs.map(\.id) == ["R5", "R4"])
            #expect(first.nextCursor == "R4")
            let second = try await store.listRuns(RunQuery(limit: 2, cursor: first.nextCursor))
            #expect(second.runs.map(\.id) == ["R3", "R2"])
            #expect(try await store.listRuns(RunQuery(status: .abandoned)).runs.map(\.id) == ["R2"])
            #expect(try await store.listRuns(RunQuery(saga: "nope")).runs.isEmpty)
            #expect(try await store.listRuns(RunQuery(createdAfter: t0.addingTimeInterval(4))).runs.map(\.id) == ["R5", "R4"])
            #expect(try await store.listRuns(RunQuery(createdBefore: t0.addingTimeInterval(2))).runs.map(\.id) == ["R1"])
            #expect(try await store.listRuns(RunQuery(idempotencyKey: "k3")).runs.map(\.idempotencyKey) == ["k3"])
            #expect(try await store.unfinishedRuns().map(\.id) == ["R1", "R3", "R4", "R5"])
        }
    }
}

/// What only PostgreSQL needs checking for: connecting, the schema's version, the password.
@Suite(.serialized, .tags(.postgres), .needs(.postgres), .timeLimit(.minutes(10))) struct PostgresStoreTests {
    @Test func aWrongPasswordIsReportedAtOnceWithoutThePassword() async throws {
        let url = try await StoreKind.postgres.newDatabase()
        let wrong = url.replacingOccurrences(of: "://skald:", with: "://skald:not-the-password-")
        do {
            // The server's own refusal, from the first direct connection (the pool would keep retrying instead).
            let store = try await PostgresStore.open(try PostgresLocation(url: wrong))
            await store.shutdown()
            Issue.record("a wrong password was accepted")
        } catch {
            let message = "\(error)"
            #expect(message.contains("cannot connect to postgres://skald:***@127.0.0.1:"), "\(message)")
            #expect(!message.contains("not-the-password"), "\(message)")
            #expect(message.contains("password authentication failed"), "\(message)")
        }
    }

    @Test func urlsAreCheckedAndShownWithoutThePassword() throws {
        let location = try PostgresLocation(url: "postgres://ana:s3cret@db.example:6543/skald")
        #expect(location.description == "postgres://ana:***@db.example:6543/skald")
        #expect(try PostgresLocation(url: "postgresql://ana@127.0.0.1/skald").port == 5432)
        #expect(throws: PostgresStoreError.self) { try PostgresLocation(url: "postgres://ana:s3cret@127.0.0.1:5432") }
        do {
            _ = try PostgresLocation(url: "postgres://:s3cret@127.0.0.1/x")
            Issue.record("a URL without a user was accepted")
        } catch {
            #expect("\(error)".contains("names no user"))
            #expect(!"\(error)".contains("s3cret"))
        }
    }

    @Test func aDatabaseFromANewerSkaldIsRefusedAndTheHistoryIsAppendOnly() async throws {
        let url = try await StoreKind.postgres.newDatabase()
        let store = try await PostgresStore.open(try PostgresLocation(url: url))
        _ = try await store.createRun(newRun("R1"), transition: machine.start(runID: "R1", at: t0))
        await #expect(throws: (any Error).self) { try await store.execute("UPDATE event SET message = 'rewritten'") }
        try await store.execute("INSERT INTO skald_migration (identifier) VALUES ('v99-from-the-future')")
        await store.shutdown()
        do {
            let reopened = try await PostgresStore.open(try PostgresLocation(url: url))
            await reopened.shutdown()
            Issue.record("a newer schema was accepted")
        } catch {
            #expect("\(error)".contains("written by a newer version of Skald"))
            #expect("\(error)".contains("v99-from-the-future"))
        }
    }

    @Test func pruneDeletesOnlyRunsThatEndedBeforeTheCutoff() async throws {
        let store = try await PostgresStore.open(try PostgresLocation(url: try await StoreKind.postgres.newDatabase()))
        for id in ["R1", "R2", "R3"] {
            _ = try await store.createRun(newRun(id), transition: machine.start(runID: id, at: t0))
        }
        for id in ["R1", "R2"] {
            let state = try #require(try await store.run(id: id)).state
            try await store.recordTransition(runID: id, at: t0, transition: try #require(machine.abandon(state, note: "x", at: t0)))
        }
        #expect(try await store.prune(finishedBefore: t0.addingTimeInterval(1), batchSize: 1) == 2)
        #expect(try await store.listRuns(RunQuery()).runs.map(\.id) == ["R3"])
        #expect(try await store.events(runID: "R1").isEmpty)
        await store.shutdown()
    }
}

/// Nodes sharing one PostgreSQL database: claims, leases, fenced writes and forwarded actions, with two stores
/// (two nodes) on one real database.
@Suite(.serialized, .tags(.postgres), .needs(.postgres), .timeLimit(.minutes(10))) struct PostgresNodeTests {
    func twoNodes() async throws -> (PostgresStore, PostgresStore) {
        let location = try PostgresLocation(url: try await StoreKind.postgres.newDatabase())
        let a = try await PostgresStore.open(location, node: "node-a")
        let b = try await PostgresStore.open(location, node: "node-b")
        try await a.renewLease(for: .seconds(60))
        try await b.renewLease(for: .seconds(60))
        return (a, b)
    }

    @Test func aLiveNodesRunIsNotClaimedAndALapsedNodesRunIsTakenOverAndFenced() async throws {
        let (a, b) = try await twoNodes()
        _ = try await a.createRun(newRun("R1"), transition: machine.start(runID: "R1", at: t0))
        #expect(try await b.claimRuns(limit: 10).isEmpty, "node-a is live and owns R1")
        guard case .ownedBy("node-a") = try await b.claimRun(id: "R1") else { Issue.record("R1 should be node-a's"); return }
        #expect(try await b.runsHeldElsewhere() == 1)

        // node-a stops renewing: its lease lapses.
        try await a.execute("UPDATE skald_node SET lease_until = 0 WHERE id = 'node-a'")
        #expect(try await b.claimRuns(limit: 10).map(\.id) == ["R1"])
        let takeOver = try #require(try await b.events(runID: "R1").first { $0.kind == .runTakenOver })
        #expect(takeOver.data["from"] == "node-a" && takeOver.data["to"] == "node-b")
        #expect(takeOver.message.contains("node node-b took the run over: node node-a, which drove it, stopped renewing its lease"))

        // node-a, unaware, tries to store progress: refused, and nothing of it is stored.
        let state = try #require(try await b.run(id: "R1")).state
        let abandon = try #require(machine.abandon(state, note: "by the stale node", at: t0))
        do {
            try await a.recordTransition(runID: "R1", at: t0, transition: abandon)
            Issue.record("a write of a node that lost the run was stored")
        } catch let error as RunOwnershipLost {
            #expect(error.owner == "node-b")
        }
        #expect(try await b.run(id: "R1")?.state.status == .running)
        try await b.recordTransition(runID: "R1", at: t0, transition: abandon)
        #expect(try await b.run(id: "R1")?.state.status == .abandoned)
        // A lapsed node's running run taken for an operator's action says so in its history too.
        try await a.renewLease(for: .seconds(60))
        _ = try await a.createRun(newRun("R2"), transition: machine.start(runID: "R2", at: t0))
        guard case .ownedBy("node-a") = try await b.claimRun(id: "R2") else { Issue.record("R2 should be node-a's"); return }
        try await a.execute("UPDATE skald_node SET lease_until = 0 WHERE id = 'node-a'")
        guard case .claimed = try await b.claimRun(id: "R2") else { Issue.record("a lapsed node's run should be claimable"); return }
        #expect(try await b.events(runID: "R2").filter { $0.kind == .runTakenOver }.count == 1)
        // An ended run needs no driver: any node may take it for an operator's action.
        guard case .claimed = try await a.claimRun(id: "R1") else { Issue.record("an ended run should be claimable"); return }
        await a.shutdown()
        await b.shutdown()
    }

    /// A node lets a run go and claims it back while a driver of its first claim is still at work: that old driver's
    /// writes are refused, even a transition without an attempt, although the node owns the run again.
    @Test func writesAreFencedOnTheClaimNotOnlyOnTheOwner() async throws {
        let (a, b) = try await twoNodes()
        var run = newRun("E1")
        run.ownedByCreator = false
        _ = try await a.createRun(run, transition: machine.start(runID: "E1", at: t0))
        let first = try #require(try await a.claimRuns(limit: 10).first)
        let firstEpoch = try #require(first.claimEpoch)
        let begun = machine.beginAttempt(first.state, step: 0, at: t0)
        let key = AttemptKey(runID: "E1", step: 0, stepName: "a", phase: .forward, number: 1)
        try await RunFence.$epoch.withValue(firstEpoch) { try await a.recordAttemptStarted(key, at: t0, transition: begun) }

        // Let go (this node cannot run it, say), then claimed back: a new claim.
        try await a.releaseRun(id: "E1")
        let again = try #require(try await a.claimRuns(limit: 10).first)
        #expect(again.id == "E1" && again.claimEpoch == firstEpoch + 1)
        // The first claim's driver stores a deadline (no attempt, so no attempt key to catch it): refused.
        let stale = try #require(machine.abandon(begun.state, note: "from the first claim", at: t0))
        do {
            try await RunFence.$epoch.withValue(firstEpoch) { try await a.recordTransition(runID: "E1", at: t0, transition: stale) }
            Issue.record("a write of an earlier claim was stored")
        } catch let error as RunOwnershipLost {
            #expect(error.owner == "node-a")
        }
        #expect(try await a.run(id: "E1")?.state.status == .running)
        // The current claim's writes go through.
        try await RunFence.$epoch.withValue(again.claimEpoch) { try await a.recordTransition(runID: "E1", at: t0, transition: stale) }
        #expect(try await a.run(id: "E1")?.state.status == .abandoned)
        await a.shutdown()
        await b.shutdown()
    }

    @Test func runsLeftForAnyNodeAreEachClaimedByExactlyOne() async throws {
        let (a, b) = try await twoNodes()
        for index in 0..<40 {
            var run = newRun("S\(index)")
            run.ownedByCreator = false
            _ = try await a.createRun(run, transition: machine.start(runID: "S\(index)", at: t0))
        }
        async let byA = Self.claimAll(a)
        async let byB = Self.claimAll(b)
        let (claimedByA, claimedByB) = try await (byA, byB)
        #expect(Set(claimedByA).isDisjoint(with: claimedByB))
        #expect(Set(claimedByA + claimedByB).count == 40)
        #expect(claimedByA.count + claimedByB.count == 40)
        // A node that stops lets go of its runs: the other takes them at once, with no take-over event.
        try await a.endLease()
        let released = try await b.claimRuns(limit: 100).map(\.id)
        #expect(Set(released) == Set(claimedByA))
        for id in released { #expect(try await b.events(runID: id).allSatisfy { $0.kind != .runTakenOver }) }
        await a.shutdown()
        await b.shutdown()
    }

    static func claimAll(_ store: PostgresStore) async throws -> [String] {
        var ids: [String] = []
        while true {
            let claimed = try await store.claimRuns(limit: 7).map(\.id)
            ids += claimed
            if claimed.isEmpty { return ids }
        }
    }

    @Test func aForwardedActionIsAnsweredByTheOwnerOrWithdrawnAfterItsTimeout() async throws {
        let (a, b) = try await twoNodes()
        let action = OperatorAction.cancel(reason: "customer called", by: "ana")
        async let answer = a.forward(action, runID: "R9", to: "node-b", timeout: .seconds(60))
        var pending: [NodeCommand] = []
        while pending.isEmpty { pending = try await b.pendingCommands() }
        #expect(pending.count == 1 && pending[0].runID == "R9" && pending[0].action == action)
        try await b.answer(pending[0].id, with: CommandAnswer(outcome: .conflict, message: "run R9 is already compensating"))
        #expect(try await answer == CommandAnswer(outcome: .conflict, message: "run R9 is already compensating"))

        let unanswered = try await a.forward(action, runID: "R9", to: "node-b", timeout: .milliseconds(50))
        #expect(unanswered.outcome == .unavailable)
        #expect(unanswered.message.contains("did not take the action within") && unanswered.message.contains("nothing was done"))
        #expect(try await b.pendingCommands().isEmpty, "a withdrawn action is never carried out late")

        // Once the owner took it, the action is never withdrawn: past the timeout the caller hears it was accepted.
        async let slow = a.forward(action, runID: "R9", to: "node-b", timeout: .milliseconds(300))
        var taken: [NodeCommand] = []
        while taken.isEmpty { taken = try await b.pendingCommands() }
        let accepted = try await slow
        #expect(accepted.outcome == .accepted, "\(accepted)")
        #expect(accepted.message.contains("took the action") && !accepted.message.contains("nothing was done"))
        #expect(try await b.pendingCommands().isEmpty, "a taken action is not handed out twice")
        // Its answer is stored for whoever looks, and leaving the lease does not withdraw it.
        try await b.answer(taken[0].id, with: CommandAnswer(outcome: .done))
        // Taken by a node that then stopped (its lease lapsed): the caller is not told it is being carried out. The
        // timeout leaves time for the lease to lapse before it ends, however busy the machine.
        async let orphaned = a.forward(action, runID: "R9", to: "node-b", timeout: .seconds(5))
        var takenAgain: [NodeCommand] = []
        while takenAgain.isEmpty { takenAgain = try await b.pendingCommands() }
        try await a.execute("UPDATE skald_node SET lease_until = 0 WHERE id = 'node-b'")
        let lost = try await orphaned
        #expect(lost.outcome == .unavailable && lost.message.contains("took the action and then stopped"), "\(lost)")
        await a.shutdown()
        await b.shutdown()
    }
}

let unregistered = try! DefinitionParser.parse(Array("""
    { "name": "solo", "version": 3, "steps": [ { "name": "only", "request": { "method": "POST", "url": "http://127.0.0.1:1/x" } } ] }
    """.utf8))

/// `skald export` / `skald import` between the stores: each run arrives as it was, in either direction.
@Suite(.serialized, .tags(.postgres), .timeLimit(.minutes(10))) struct TransferBetweenStoresTests {
    static let directions: [(StoreKind, StoreKind)] = [(.sqlite, .postgres), (.postgres, .sqlite), (.sqlite, .sqlite)].filter {
        StoreKind.tested.contains($0.0) && StoreKind.tested.contains($0.1)
    }

    @Test(arguments: directions)
    func everyRunArrivesAsItWasWithItsHistoryAndAttempts(from source: StoreKind, to target: StoreKind) async throws {
        let input: JSONValue = ["sku": "S1", "big": .bigInteger("123456789012345678901234567890"), "note": "naïve \"quoted\"\n"]
        let from = try await source.newDatabase()
        var lines: [String] = []
        try await source.with(from) { store in
            #expect(try await store.registerDefinition(definition, at: t0) == .registered)
            // R1 is compensating after b timed out; R2 has an attempt in flight (its process died while sending it).
            var traced = newRun("R1", input: input, key: "order-1")
            traced.trace = RunTrace(parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", state: "congo=t61rcWkgMzE")
            try await storeATimedOutRun(traced, in: store)

            let other = machine.start(runID: "R2", at: t0)
            _ = try await store.createRun(newRun("R2"), transition: other)
            let inFlight = machine.beginAttempt(other.state, step: 0, at: t0)
            try await store.recordAttemptStarted(
                AttemptKey(runID: "R2", step: 0, stepName: "a", phase: .forward, number: 1), at: t0, transition: inFlight)

            // R3 ran a definition that was never registered (skald run FILE): it travels with the run.
            let solo = SagaMachine(saga: unregistered)
            let finishedSolo = solo.start(runID: "R3", at: t0)
            _ = try await store.createRun(
                NewRun(id: "R3", definition: unregistered, input: [:], createdAt: t0), transition: finishedSolo)

            // R4 ended compensated after an operator undid a by hand (compensation_resolved, with who, what, when).
            try await storeATimedOutRun(newRun("R4"), in: store)
            var resolved = try #require(try await store.run(id: "R4")).state
            resolved.steps[0].status = .compensationResolved
            resolved.steps[0].dueAt = nil
            resolved.steps[0].resolution = StepResolution(by: "ana", note: "released in the warehouse «system»", at: t0.addingTimeInterval(5))
            resolved.status = .compensated
            try await store.recordTransition(runID: "R4", at: t0, transition: SagaMachine.Transition(state: resolved, events: []))

            let counts = try await StoreTransfer.export(from: store, source: from, at: t0) { lines.append($0) }
            #expect(counts.definitions == 1 && counts.runs == 4 && counts.unfinished == 3)
        }
        // The unregistered definition's line comes once, before its run.
        #expect(lines.filter { $0.hasPrefix("{\"definition\"") }.count == 2)
        let bytes = lines.map { Array($0.utf8) }
        let checked = try StoreTransfer.check(lines: bytes)
        let to = try await target.newDatabase()
        let importedAt = t0.addingTimeInterval(60)
        try await target.with(to) { store in
            let counts = try await StoreTransfer.importChecked(checked, lines: bytes, into: store, at: importedAt)
            #expect(counts.definitions == 1 && counts.runs == 4 && counts.unfinished == 3)
            let again = try await StoreTransfer.importChecked(checked, lines: bytes, into: store, at: importedAt)
            #expect(again.runs == 0 && again.alreadyPresent == 4 && again.definitions == 0)
        }
        try await source.with(from) { old in
            try await target.with(to) { new in
                #expect(try await new.definitions().map(\.hash) == [definition.contentHash])
                #expect(try await new.unfinishedRuns().map(\.id).sorted() == ["R1", "R2", "R3"])
                #expect(try await new.run(id: "R3")?.definitionDocument == unregistered.document)
                #expect(try await new.definition(name: "solo", version: nil) == nil, "an unregistered definition stays unregistered")
                let resolution = try await new.run(id: "R4")?.state.steps[0].resolution
                #expect(resolution == StepResolution(by: "ana", note: "released in the warehouse «system»", at: t0.addingTimeInterval(5)))
                #expect(try await old.run(id: "R4")?.state.steps[0].resolution == resolution, "the source store read back what it wrote")
                for id in ["R1", "R2", "R3", "R4"] {
                    let (was, now) = (try #require(try await old.run(id: id)), try #require(try await new.run(id: id)))
                    #expect(now.state == was.state)
                    #expect(now.input == was.input && now.idempotencyKey == was.idempotencyKey)
                    #expect(now.createdAt == was.createdAt && now.updatedAt == was.updatedAt)
                    #expect(now.trace == was.trace)
                    let history = try await new.events(runID: id)
                    #expect(Array(history.dropLast()) == (try await old.events(runID: id)))
                    #expect(history.last == RunEvent(
                        at: importedAt, kind: .runImported, message: "imported from \(from) (exported \(t0.formatted(.iso8601))) by skald import",
                        data: ["from": .string(from), "exportedAt": .double(t0.timeIntervalSince1970)]))
                    // SQLite keeps no node per attempt; PostgreSQL keeps what it was given.
                    func withoutNode(_ attempts: [AttemptRecord]) -> [AttemptRecord] { attempts.map { var a = $0; a.node = nil; return a } }
                    #expect(withoutNode(try await new.attempts(runID: id)) == withoutNode(try await old.attempts(runID: id)))
                }
                // R2's attempt is still in flight, so the engine on the new store sends it again with its key.
                #expect(try await new.run(id: "R2")?.state.steps[0].isInFlight == true)
                #expect(try await new.run(id: "R1")?.trace?.state == "congo=t61rcWkgMzE")
                #expect(try await new.attempts(runID: "R2").first?.finishedAt == nil)
            }
        }
    }

    @Test(arguments: StoreKind.tested)
    func aRunWhoseKeyOrDefinitionClashesIsRefusedAndNothingOfItStored(kind: StoreKind) async throws {
        var lines: [String] = []
        try await StoreKind.sqlite.with(try await StoreKind.sqlite.newDatabase()) { store in
            _ = try await store.registerDefinition(definition, at: t0)
            _ = try await store.createRun(newRun("R1", key: "order-1"), transition: machine.start(runID: "R1", at: t0))
            _ = try await StoreTransfer.export(from: store, source: "a.sqlite", at: t0) { lines.append($0) }
        }
        let bytes = lines.map { Array($0.utf8) }
        let checked = try StoreTransfer.check(lines: bytes)
        try await kind.with(try await kind.newDatabase()) { store in
            _ = try await store.createRun(newRun("OTHER", key: "order-1"), transition: machine.start(runID: "OTHER", at: t0))
            let error = await #expect(throws: StoreError.self) { try await StoreTransfer.importChecked(checked, lines: bytes, into: store, at: t0) }
            #expect(error?.message == "run R1 cannot be imported: its idempotency key order-1 belongs to run OTHER in this database already")
            #expect(try await store.run(id: "R1") == nil)
            #expect(try await store.events(runID: "R1").isEmpty)
        }
        try await kind.with(try await kind.newDatabase()) { store in
            let changed = try DefinitionParser.parse(Array(definition.documentText.replacingOccurrences(of: "/b", with: "/c").utf8))
            _ = try await store.registerDefinition(changed, at: t0)
            let error = await #expect(throws: StoreError.self) { try await StoreTransfer.importChecked(checked, lines: bytes, into: store, at: t0) }
            #expect(error?.message.contains("the database has another definition pair version 1 than the file; nothing was imported") == true)
            #expect(try await store.run(id: "R1") == nil)
        }
    }

    @Test func aLineThatIsNotWhatExportWroteIsNamedByLineAndPath() throws {
        let header = TransferFormat.line(.header(TransferFormat.Header(exportedAt: t0, source: "x")))
        func problem(_ lines: [String]) -> String {
            do {
                _ = try StoreTransfer.check(lines: lines.map { Array($0.utf8) })
                return "no problem"
            } catch { return "\(error)" }
        }
        #expect(problem([]) == "line 1: the file is empty; it should start with the line skald export writes first")
        #expect(problem(["{\"run\":{}}"]) == "line 1: the file does not start with skald export's header line; is it an export?")
        #expect(problem([header, "{nope"]).hasPrefix("line 2: not JSON:"))
        #expect(problem([header, "{\"format\":\"skald-export\",\"version\":9,\"exportedAt\":1,\"source\":\"y\"}"]).hasPrefix("line 2: version: the file is format version 9"))
        let tampered = TransferFormat.line(
            .definition(StoredDefinition(hash: "0000", name: "pair", version: 1, document: definition.document, createdAt: t0), registered: true))
        #expect(problem([header, tampered]) == "line 2: definition.hash: does not match the definition (the line was changed after export)")
        #expect(problem([header, "{\"definition\":{\"hash\":1}}"]) == "line 2: definition.hash: should be a string, not a number")
        #expect(problem([header, "[1]"]) == "line 2: a line must hold a \"definition\" or a \"run\" (or, first, the header)")
    }
}

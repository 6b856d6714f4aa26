import Foundation
import SkaldCore
import Synchronization
import Testing
@testable import SkaldEngine
import SkaldTestSupport

@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct EngineTests {
    let definition: SagaDefinition

    init() throws {
        definition = try saga(twoSteps)
    }

    func engine(_ store: any SagaStore, _ executor: ScriptedExecutor, clock: any EngineClock = ManualClock()) -> Engine {
        Engine(store: store, executor: executor, clock: clock, configuration: EngineConfiguration(environment: [:], jitterSample: { 1 }))
    }

    @Test(arguments: EngineStore.tested)
    func runsToCompletionAndStoresEveryTransition(on kind: EngineStore) async throws { try await kind.with { store in
        let executor = ScriptedExecutor()
        let engine = engine(store, executor)
        let runID = try await engine.startRun(definition, input: ["sku": "S1"])
        let state = try await engine.drive(runID: runID)
        #expect(state.status == .completed)
        #expect(try await store.run(id: runID)?.state == state)
        let kinds = try await store.events(runID: runID).map(\.kind)
        #expect(kinds == [.runStarted, .attemptStarted, .attemptSucceeded, .stepSucceeded, .attemptStarted, .attemptSucceeded, .stepSucceeded, .runCompleted])
        // b's request could read a's response.
        #expect(executor.calls[1].context.responses["a"]?.body["id"] == "a/forward#1")
        #expect(executor.calls.map(\.key.idempotencyKey) == ["\(runID):a:forward", "\(runID):b:forward"])
    } }

    @Test(arguments: EngineStore.tested)
    func retriesWaitOnTheInjectedClockWithTheSameIdempotencyKey(on kind: EngineStore) async throws { try await kind.with { store in
        let clock = ManualClock()
        let executor = ScriptedExecutor(["a/forward": [.unavailable, .unavailable]])
        let engine = engine(store, executor, clock: clock)
        let runID = try await engine.startRun(definition, input: ["sku": "S1"])
        let start = clock.now()
        let drive = Task { try await engine.drive(runID: runID) }

        await clock.waitForSleepers()
        #expect(clock.sleepingUntil == [start.addingTimeInterval(1)])
        #expect(executor.calls.count == 1)
        clock.advance(by: 1)
        await executor.waitForCalls(2)
        await clock.waitForSleepers()
        #expect(clock.sleepingUntil == [start.addingTimeInterval(3)])
        clock.advance(by: 2)

        let state = try await drive.value
        #expect(state.status == .completed)
        let attemptsOfA = executor.calls.filter { $0.key.stepName == "a" }
        #expect(attemptsOfA.map(\.key.number) == [1, 2, 3])
        #expect(Set(attemptsOfA.map(\.key.idempotencyKey)).count == 1)
        let stored = try await store.attempts(runID: runID)
        #expect(stored.map(\.succeeded) == [false, false, true, true])
    } }

    @Test(arguments: EngineStore.tested)
    func aPermanentFailureCompensatesWithTheStoredResponse(on kind: EngineStore) async throws { try await kind.with { store in
        let executor = ScriptedExecutor(["b/forward": [.declined]])
        let engine = engine(store, executor)
        let runID = try await engine.startRun(definition, input: ["sku": "S1"])
        let state = try await engine.drive(runID: runID)
        #expect(state.status == .compensated)
        #expect(state.failure?.step == "b")
        let undo = try #require(executor.calls.last)
        #expect(undo.key.phase == .compensate)
        #expect(undo.key.idempotencyKey == "\(runID):a:compensate")
        #expect(undo.context.responses["a"]?.body["id"] == "a/forward#1")
    } }

    @Test(arguments: EngineStore.tested)
    func anInputThatLacksAReferencedFieldIsRefusedAndNothingIsStored(on kind: EngineStore) async throws { try await kind.with { store in
        let engine = engine(store, ScriptedExecutor())
        await #expect(throws: InputError.self) {
            try await engine.startRun(definition, input: ["other": 1])
        }
        let unfinished = try await store.unfinishedRuns()
        #expect(unfinished.isEmpty)
    } }

    @Test(arguments: EngineStore.tested)
    func aFailedCommitStopsTheRunLoudly(on kind: EngineStore) async throws { try await kind.with { inner in
        let executor = ScriptedExecutor()
        let engine = engine(FailingStore(inner, failAt: .attemptFinished), executor)
        let runID = try await engine.startRun(definition, input: ["sku": "S1"])
        let error = await #expect(throws: RunStoreFailure.self) {
            try await engine.drive(runID: runID)
        }
        #expect(error?.underlying is FailingStore.Died)
        // Nothing after the failed commit was sent.
        #expect(executor.calls.count == 1)
    } }

    @Test(arguments: EngineStore.tested)
    func resumeResendsAnAttemptThatHasNoRecordedOutcome(on kind: EngineStore) async throws { try await kind.with { store in
        // The first process records attempt 1 of "a" as sent, then dies before storing its outcome.
        let dying = engine(FailingStore(store, failAt: .attemptFinished), ScriptedExecutor())
        let runID = try await dying.startRun(definition, input: ["sku": "S1"])
        _ = try? await dying.drive(runID: runID)
        let interrupted = try #require(try await store.run(id: runID))
        #expect(interrupted.state.steps[0].isInFlight)

        let executor = ScriptedExecutor()
        let restarted = engine(store, executor)
        let results = try await restarted.resumeUnfinished()
        #expect(results[runID]?.status == .completed)
        let first = try #require(executor.calls.first)
        #expect(first.key.stepName == "a")
        #expect(first.key.number == 1)
        #expect(first.key.idempotencyKey == "\(runID):a:forward")
        let attempts = try await store.attempts(runID: runID)
        #expect(attempts.first?.sends == 2)
        #expect(try await store.events(runID: runID).contains { $0.kind == .attemptResent })
    } }

    @Test(arguments: EngineStore.tested)
    func resumeLeavesFinishedRunsAlone(on kind: EngineStore) async throws { try await kind.with { store in
        let engine = engine(store, ScriptedExecutor())
        let runID = try await engine.startRun(definition, input: ["sku": "S1"])
        try await engine.drive(runID: runID)
        #expect(try await engine.resumeUnfinished().isEmpty)
    } }
}

@Suite(.timeLimit(.minutes(10))) struct DeadlineEngineTests {
    @Test(arguments: EngineStore.tested)
    func theDeadlineWakesTheDriverAndCompensatesEvenWhileARetryIsWaiting(on kind: EngineStore) async throws { try await kind.with { store in
        let definition = try saga("""
            { "name": "slow", "version": 1, "deadline": "10s", "steps": [
              { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" }, "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a" } },
              { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b",
                "retry": { "maxAttempts": 5, "initialInterval": "30s", "maxInterval": "1m", "jitter": "none" } } } ] }
            """)
        let clock = ManualClock()
        let executor = ScriptedExecutor(["b/forward": [.unavailable, .unavailable]])
        let engine = Engine(store: store, executor: executor, clock: clock, configuration: EngineConfiguration(environment: [:]))
        let start = clock.now()
        let runID = try await engine.startRun(definition, input: [:])
        let drive = Task { try await engine.drive(runID: runID) }
        await executor.waitForCalls(2)
        await clock.waitForSleepers()
        // b's retry would be at +30s; the driver wakes for the deadline at +10s instead.
        #expect(clock.sleepingUntil == [start.addingTimeInterval(10)])
        clock.advance(by: 10)
        let state = try await drive.value
        #expect(state.status == .compensated)
        #expect(state.failure?.reason == "the saga deadline of 10s passed")
        #expect(executor.calls.map { "\($0.key.stepName)/\($0.key.phase.rawValue)" } == ["a/forward", "b/forward", "a/compensate"])
        #expect(try await store.events(runID: runID).contains { $0.kind == .deadlinePassed })
    } }
}

@Suite(.timeLimit(.minutes(10))) struct RunTraceTests {
    @Test func eachAttemptHasASpanOfItsOwnAndTheSameOneWhenSentAgain() throws {
        let trace = try #require(RunTrace.continuing(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "a=1"))
        #expect(trace.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        let first = AttemptKey(runID: "R", step: 0, stepName: "a", phase: .forward, number: 1)
        let second = AttemptKey(runID: "R", step: 0, stepName: "a", phase: .forward, number: 2)
        let undo = AttemptKey(runID: "R", step: 0, stepName: "a", phase: .compensate, number: 1)
        let spans = [first, second, undo].map { trace.headers(for: $0).traceparent }
        #expect(Set(spans).count == 3)
        #expect(trace.headers(for: first).traceparent == spans[0], "a resent attempt keeps its span")
        #expect(spans.allSatisfy { $0.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-") && $0.hasSuffix("-01") })
        #expect(trace.headers(for: first).tracestate == "a=1")
        #expect(RunTrace.continuing(traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", tracestate: nil) == nil)
        #expect(RunTrace.continuing(traceparent: "garbage", tracestate: "a=1") == nil)
        #expect(RunTrace.new().traceID != RunTrace.new().traceID)
    }
}

/// A stored run that breaks the engine's rules (a damaged row, a crafted import) is left undriven, says so, and can be
/// abandoned, while every other run carries on: it never stops the process.
@Suite(.timeLimit(.minutes(10))) struct UnrunnableRunTests {
    @Test(arguments: EngineStore.tested)
    func aBrokenStoredRunIsLeftAloneAndCanBeAbandonedWhileTheOthersCarryOn(on kind: EngineStore) async throws { try await kind.with { store in
        let definition = try saga(twoSteps)
        let machine = SagaMachine(saga: definition)
        // Step a succeeded but is still due: beginAttempt would trap on it.
        var state = machine.start(runID: "BROKEN", at: Date(timeIntervalSince1970: 1_800_000_000)).state
        state.steps[0].status = .succeeded
        state.steps[0].response = StepResponse(status: 200, body: ["id": "x"])
        let broken = StoredRun(
            id: "BROKEN", sagaName: "pair", sagaVersion: 1, definitionHash: definition.contentHash, definitionDocument: definition.document,
            input: ["sku": "S1"], createdAt: Date(timeIntervalSince1970: 1_800_000_000), updatedAt: Date(timeIntervalSince1970: 1_800_000_000),
            state: state)
        #expect(try await store.importRun(ExportedRun(run: broken, events: [], attempts: []), events: []) == .imported)

        let executor = ScriptedExecutor()
        let engine = Engine(store: store, executor: executor, clock: ManualClock(), configuration: EngineConfiguration(environment: [:], jitterSample: { 1 }))
        let good = try await store.createRun(
            NewRun(id: "GOOD", definition: definition, input: ["sku": "S2"], createdAt: Date()), transition: machine.start(runID: "GOOD", at: Date()))
        guard case .created = good else { Issue.record("GOOD was not created"); return }
        let refused = Mutex<[String: String]>([:])
        let results = try await engine.resumeUnfinished { id, error in refused.withLock { $0[id] = "\(error)" } }
        #expect(results["GOOD"]?.status == .completed)
        #expect(results["BROKEN"] == nil)
        let why = try #require(refused.withLock { $0["BROKEN"] })
        #expect(why.contains("run BROKEN cannot be driven: its stored state breaks the engine's rules: steps[0].dueAt: a: a step in status succeeded"))
        #expect(executor.calls.allSatisfy { $0.key.runID == "GOOD" }, "nothing was sent for the broken run")

        // It says so in its history and to whoever reads it, and only abandoning it is allowed.
        let stored = try #require(try await store.run(id: "BROKEN"))
        #expect(stored.state == state)
        #expect(try await store.events(runID: "BROKEN").last?.kind == .runUnrunnable)
        #expect(engine.unrunnable(stored)?.canBeAbandoned == true)
        let cancel = await #expect(throws: EngineError.self) { try await engine.cancel(runID: "BROKEN", reason: "no") }
        #expect(cancel?.code == .conflict && cancel?.message.contains("abandon it") == true)
        let abandoned = try await engine.abandon(runID: "BROKEN", note: "settled by hand")
        #expect(abandoned.status == .abandoned)
        #expect(engine.unrunnable(try #require(try await store.run(id: "BROKEN"))) == nil)
    } }
}

/// The long-poll notifier holds nothing for runs that are not in progress here.
@Suite(.timeLimit(.minutes(10))) struct EventNotifierTests {
    @Test func aRunNoLongerDrivenHereAndALongPollThatTimedOutLeaveNothing() async {
        let notifier = EventNotifier()
        // Started here, then driven by another node: it never finishes here, so it is forgotten when handed over.
        let before = notifier.version(of: "elsewhere")
        notifier.notify("elsewhere")
        #expect(notifier.trackedRuns == 1)
        notifier.forget("elsewhere")
        #expect(notifier.trackedRuns == 0)
        // A reader that read a version before sees a change, so it reads the store again rather than waiting.
        #expect(notifier.version(of: "elsewhere") != before)
        // A long poll that timed out: no waiter list is left behind for its run.
        let version = notifier.version(of: "quiet")
        await notifier.wait(for: "quiet", after: version, timeout: .milliseconds(5))
        #expect(notifier.runsWaitedOn == 0)
        #expect(notifier.trackedRuns == 0)
    }
}

/// The system's time, moved ahead by `jump(by:)`; sleeps by the system's time.
final class JumpingClock: EngineClock {
    private let offset = Mutex<Double>(0)
    func jump(by seconds: Double) { offset.withLock { $0 += seconds } }
    func now() -> Date { Date().addingTimeInterval(offset.withLock { $0 }) }
    func sleep(until deadline: Date) async throws {
        try await SystemClock().sleep(until: deadline.addingTimeInterval(-offset.withLock { $0 }))
    }
}

/// The system's time, `offset` seconds off.
struct OffsetClock: EngineClock {
    let offset: Double
    func now() -> Date { Date().addingTimeInterval(offset) }
    func sleep(until deadline: Date) async throws { try await SystemClock().sleep(until: deadline.addingTimeInterval(-offset)) }
}

/// On a shared store a node measures its clock against the database's at every lease renewal and warns past a second.
@Suite(.timeLimit(.minutes(10))) struct ClockSkewTests {
    @Test(.tags(.postgres), .needs(.postgres), arguments: [5.0, -5.0, 0.0])
    func aNodeWhoseClockIsOffSaysByHowMuch(offset: Double) async throws { try await EngineStore.postgres.with { store in
        let engine = Engine(
            store: store, executor: ScriptedExecutor(), clock: OffsetClock(offset: offset), configuration: EngineConfiguration(environment: [:]))
        // A connection open first, so that the renewal's round trip is a query's alone (opening one on a loaded
        // machine can take long enough to move the measure's midpoint by a second).
        _ = try await store.listRuns(RunQuery(limit: 1))
        let (skew, warning) = try await engine.withLease { (engine.clockSkew, engine.clockWarning) }
        let measured = try #require(skew?.seconds)
        // Both clocks read the same machine's time: what is measured is the offset, within half a round trip.
        #expect(abs(measured - offset) < 1, "measured \(measured)s for a clock \(offset)s off")
        if offset == 0 {
            #expect(warning == nil)
        } else {
            #expect(warning?.contains(offset > 0 ? "ahead of the database's" : "behind the database's") == true, "\(warning ?? "no warning")")
        }
    } }

    /// A measure whose round trip was long says little: a second off, measured over a two-second round trip, is no
    /// warning (CI saw exactly that on a loaded machine, for a clock that was not off at all).
    @Test func aSlowRoundTripIsNoEvidenceOfAnOffClock() {
        #expect(!NodeCoordinator.isOff(-1.03, 1.1))
        #expect(NodeCoordinator.isOff(-1.03, 0.01))
        #expect(NodeCoordinator.isOff(5, 0.5))
        #expect(!NodeCoordinator.isOff(0.2, 0))
    }

    /// Readiness on a shared store: a node whose last renewal is more than a lease ago is not ready (other nodes may
    /// take its runs). The clock jumps a lease ahead; the keeper, asleep until a third of a lease by the old time, does
    /// not renew before the check.
    @Test(.tags(.postgres), .needs(.postgres))
    func aNodeWhoseLeaseLapsedIsNotReady() async throws { try await EngineStore.postgres.with { store in
        let clock = JumpingClock()
        let engine = Engine(
            store: store, executor: ScriptedExecutor(), clock: clock,
            configuration: EngineConfiguration(environment: [:], node: NodeConfiguration(lease: .seconds(30))))
        let lease = "does not hold its lease"
        #expect(engine.notReadyBecause.contains { $0.contains(lease) }, "before the first renewal")
        let (held, lapsed) = try await engine.withLease { () -> ([String], [String]) in
            let held = engine.notReadyBecause
            clock.jump(by: 31)
            return (held, engine.notReadyBecause)
        }
        #expect(!held.contains { $0.contains(lease) }, "\(held)")
        #expect(held.contains { $0.contains("not serving") }, "withLease alone does not serve runs: \(held)")
        #expect(lapsed.contains { $0.contains(lease) }, "\(lapsed)")
    } }

    @Test func aStoreOfItsOwnHasNoSkewToMeasure() async throws { try await EngineStore.sqlite.with { store in
        let engine = Engine(store: store, executor: ScriptedExecutor(), configuration: EngineConfiguration(environment: [:]))
        let skew = try await engine.withLease { engine.clockSkew }
        #expect(skew == nil)
    } }
}

import Foundation
import SkaldCore
import Synchronization
import Testing
@testable import SkaldEngine
import SkaldTestSupport

/// Runs whose step waits (a sleep, an approval) on a serving engine with an injected clock: the run is parked as a
/// row, with no driver in memory, and taken up again as it comes due or when a person decides.
@Suite(.timeLimit(.minutes(5))) struct WaitingRunTests {
    static let sleepy = """
        { "name": "sleepy", "version": 1, "steps": [
          { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" },
            "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a" } },
          { "name": "hold", "sleep": "15m" },
          { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b" } } ] }
        """
    static let approved = """
        { "name": "approved", "version": 1, "steps": [
          { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" },
            "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a" } },
          { "name": "ok", "approval": { "timeout": "48h", "prompt": "Refund {{input.amount}}?" } },
          { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b" } } ] }
        """

    func serving(
        _ kind: EngineStore, _ executor: ScriptedExecutor,
        _ body: @Sendable @escaping (Engine, any SagaStore, ManualClock) async throws -> Void
    ) async throws {
        try await servingEngine(kind, executor, body)
    }

    func status(_ store: any SagaStore, _ id: String) async throws -> RunState? {
        try await store.run(id: id)?.state
    }

    @Test(arguments: [EngineStore.memory, .sqlite])
    func aSleepingRunIsARowNotATaskAndIsTakenUpAsItComesDue(on kind: EngineStore) async throws {
        let executor = ScriptedExecutor()
        try await serving(kind, executor) { engine, store, clock in
            let definition = try saga(Self.sleepy)
            let ids = try await (0..<20).asyncMap { _ in try await engine.startRun(definition, input: [:]) }
            try await waitFor("every run to sleep, parked") {
                for id in ids where try await status(store, id)?.steps[1].status != .waiting { return false }
                return engine.runs.heldCount == 0
            }
            #expect(try await store.unfinishedRuns().isEmpty, "a parked run is not loaded when the engine starts")
            #expect(executor.calls.count == 20)
            let sleeping = try #require(try await status(store, ids[0]))
            #expect(sleeping.steps[1].wait?.until == sleeping.steps[1].wait?.since.addingTimeInterval(900))

            // A minute before it is due, the run is taken up again and waits for its time in memory.
            clock.advance(by: 900 - 50)
            try await waitFor("the runs to be taken up again") { engine.runs.heldCount == 20 }
            #expect(executor.calls.count == 20, "nothing is sent before the sleep ends")
            clock.advance(by: 50)
            try await waitFor("every run to complete") {
                for id in ids where try await status(store, id)?.status != .completed { return false }
                return true
            }
            #expect(executor.calls.filter { $0.key.stepName == "b" }.count == 20)
            let kinds = try await store.events(runID: ids[0]).map(\.kind)
            #expect(kinds.contains(.waitStarted) && kinds.contains(.sleepEnded))
        }
    }

    @Test(arguments: [EngineStore.memory, .sqlite])
    func aPersonsDecisionReachesAParkedRun(on kind: EngineStore) async throws {
        let executor = ScriptedExecutor()
        try await serving(kind, executor) { engine, store, _ in
            let definition = try saga(Self.approved)
            let yes = try await engine.startRun(definition, input: ["amount": 600])
            let no = try await engine.startRun(definition, input: ["amount": 900])
            try await waitFor("both runs to wait for a decision, parked") {
                let (first, second) = (try await status(store, yes)?.steps[1].status, try await status(store, no)?.steps[1].status)
                return first == .waiting && second == .waiting && engine.runs.heldCount == 0
            }
            #expect(try await status(store, yes)?.steps[1].wait?.prompt == "Refund 600?")
            let waitingList = try await store.listRuns(RunQuery(waiting: .approval)).runs.map(\.id)
            #expect(waitingList == [yes, no].sorted(), "oldest first")

            _ = try await engine.decide(runID: yes, step: "ok", approve: true, note: "fine", by: "ana")
            _ = try await engine.decide(runID: no, step: "ok", approve: false, note: "too much", by: "bo")
            try await waitFor("both runs to end") {
                let (first, second) = (try await status(store, yes)?.status, try await status(store, no)?.status)
                return first == .completed && second == .compensated
            }
            #expect(try await status(store, yes)?.steps[1].resolution?.by == "ana")
            #expect(try await status(store, no)?.failure?.reason == "rejected by bo: too much")
            #expect(executor.calls.map { "\($0.key.stepName)/\($0.key.phase.rawValue)" }.sorted() == ["a/compensate", "a/forward", "a/forward", "b/forward"])
            await #expect(throws: EngineError.self) {
                _ = try await engine.decide(runID: yes, step: "ok", approve: true, note: "", by: "ana")
            }
            #expect(try await store.listRuns(RunQuery(waiting: .approval)).runs.isEmpty)
        }
    }

    @Test(arguments: [EngineStore.memory, .sqlite])
    func anApprovalNobodyDecidesTimesOutAsARejection(on kind: EngineStore) async throws {
        let executor = ScriptedExecutor()
        try await serving(kind, executor) { engine, store, clock in
            let id = try await engine.startRun(try saga(Self.approved), input: ["amount": 1])
            try await waitFor("the run to wait, parked") {
                let step = try await status(store, id)?.steps[1].status
                return step == .waiting && engine.runs.heldCount == 0
            }
            clock.advance(by: 48 * 3600)
            try await waitFor("the run to be compensated") { try await status(store, id)?.status == .compensated }
            let state = try #require(try await status(store, id))
            #expect(state.failure?.reason.contains("a timeout counts as a rejection") == true)
            #expect(state.steps[0].status == .compensated)
        }
    }

    @Test(arguments: [EngineStore.memory, .sqlite])
    func aCancelDuringASleepCompensatesAtOnce(on kind: EngineStore) async throws {
        let executor = ScriptedExecutor()
        try await serving(kind, executor) { engine, store, _ in
            let id = try await engine.startRun(try saga(Self.sleepy), input: [:])
            try await waitFor("the run to sleep, parked") {
                let step = try await status(store, id)?.steps[1].status
                return step == .waiting && engine.runs.heldCount == 0
            }
            _ = try await engine.cancel(runID: id, reason: "changed my mind", by: "ana")
            // The clock does not move: the compensation does not wait for the timer.
            try await waitFor("the run to be compensated") { try await status(store, id)?.status == .compensated }
            #expect(executor.calls.map { "\($0.key.stepName)/\($0.key.phase.rawValue)" } == ["a/forward", "a/compensate"])
        }
    }

    @Test(arguments: [EngineStore.memory, .sqlite])
    func aSleepUntilATimeTheRunGivesThatIsNotATimeFailsTheStep(on kind: EngineStore) async throws {
        let executor = ScriptedExecutor()
        try await serving(kind, executor) { engine, store, _ in
            let definition = try saga(
                """
                { "name": "until", "version": 1, "steps": [
                  { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" },
                    "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a" } },
                  { "name": "hold", "sleepUntil": "{{input.releaseAt}}" } ] }
                """)
            let bad = try await engine.startRun(definition, input: ["releaseAt": "next tuesday"])
            let past = try await engine.startRun(definition, input: ["releaseAt": "2001-01-01T00:00:00Z"])
            try await waitFor("both runs to end") {
                let (first, second) = (try await status(store, bad)?.status, try await status(store, past)?.status)
                return first == .compensated && second == .completed
            }
            let reason = try #require(try await status(store, bad)?.steps[1].lastError)
            #expect(reason.contains("\"next tuesday\", which is not an RFC 3339 time"), "\(reason)")
        }
    }
}

/// A serving engine (so runs park after a minute) on `kind`, with a manual clock and a callback base URL, for `body`;
/// stopped afterwards.
func servingEngine(
    _ kind: EngineStore, _ executor: ScriptedExecutor, _ body: @Sendable @escaping (Engine, any SagaStore, ManualClock) async throws -> Void
) async throws {
    try await kind.with { store in
        let clock = ManualClock()
        let engine = Engine(
            store: store, executor: executor, clock: clock,
            configuration: EngineConfiguration(
                environment: [:], jitterSample: { 1 }, parking: ParkingPolicy(after: .seconds(60), poll: .seconds(1)),
                publicURL: "http://127.0.0.1:7400"))
        let task = Task { try await engine.run() }
        let result: Result<Void, any Error>
        do { result = .success(try await body(engine, store, clock)) } catch { result = .failure(error) }
        task.cancel()
        _ = await task.result
        try result.get()
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}

/// Callback steps on a serving engine with an injected clock: the callback reaches a parked run, one that comes
/// before the request's answer is applied once the answer comes, and none by the timeout is an unknown outcome.
@Suite(.timeLimit(.minutes(5))) struct CallbackRunTests {
    static let webhook = """
        { "name": "webhook", "version": 1, "steps": [
          { "name": "charge", "callback": { "timeout": "10m" },
            "request": { "method": "POST", "url": "http://127.0.0.1:1/charges", "body": { "notify": "{{callback.url}}" } },
            "compensation": { "method": "POST", "url": "http://127.0.0.1:1/refunds" } },
          { "name": "ship", "request": { "method": "POST", "url": "http://127.0.0.1:1/ship/{{steps.charge.callback.output.id}}" } } ] }
        """

    func serving(
        _ kind: EngineStore, _ executor: ScriptedExecutor,
        _ body: @Sendable @escaping (Engine, any SagaStore, ManualClock) async throws -> Void
    ) async throws {
        try await servingEngine(kind, executor, body)
    }

    /// An engine that does not serve (runs are driven by hand and never parked), with a callback base URL.
    func handDriven(_ store: any SagaStore, _ executor: ScriptedExecutor = ScriptedExecutor()) -> Engine {
        Engine(
            store: store, executor: executor, clock: ManualClock(),
            configuration: EngineConfiguration(environment: [:], jitterSample: { 1 }, publicURL: "http://127.0.0.1:7400"))
    }

    /// Starts a webhook run and drives it until its charge waits for its callback; returns the run and its driver.
    func startWaiting(_ engine: Engine, _ store: any SagaStore) async throws -> (id: String, drive: Task<RunState, any Error>) {
        let id = try await engine.startRun(try saga(Self.webhook), input: [:])
        let drive = Task { try await engine.drive(runID: id) }
        try await waitFor("the run to wait for its callback") { try await store.run(id: id)?.state.steps[0].status == .waiting }
        return (id, drive)
    }

    func token(_ store: any SagaStore, _ id: String) async throws -> String? {
        try await store.run(id: id)?.state.steps[0].wait?.token
    }

    @Test(arguments: [EngineStore.memory, .sqlite])
    func aCallbackReachesAParkedRunAndTheNextStepReadsItsOutput(on kind: EngineStore) async throws {
        let executor = ScriptedExecutor()
        try await serving(kind, executor) { engine, store, _ in
            let id = try await engine.startRun(try saga(Self.webhook), input: [:])
            try await waitFor("the run to wait for its callback, parked") {
                let step = try await store.run(id: id)?.state.steps[0].status
                return step == .waiting && engine.runs.heldCount == 0
            }
            let token = try #require(try await token(store, id))
            #expect(executor.calls.first?.context.callback?.url == "http://127.0.0.1:7400/v1/callbacks/\(token)")
            #expect(CallbackToken.isWellFormed(token))
            let receipt = try await engine.receiveCallback(token: token, signal: .succeeded(output: ["id": "ch_1"]))
            guard case .stored = receipt else { Issue.record("\(receipt)"); return }
            try await waitFor("the run to complete") { try await store.run(id: id)?.state.status == .completed }
            #expect(executor.calls.last?.context.callbackOutputs["charge"] == ["id": "ch_1"])
            let again = try await engine.receiveCallback(token: token, signal: .succeeded(output: ["id": "ch_1"]))
            guard case .repeated = again else { Issue.record("\(again)"); return }
            let contradicting = try await engine.receiveCallback(token: token, signal: .failed(error: "no"))
            guard case .conflict = contradicting else { Issue.record("\(contradicting)"); return }
        }
    }

    /// A driver that decides to park while a callback is being stored must not park over it: the store refuses to
    /// park a run with a stored callback not yet applied, and the run goes on instead.
    @Test(arguments: [EngineStore.memory, .sqlite])
    func aRunWithAStoredCallbackNotYetAppliedIsNotParked(on kind: EngineStore) async throws {
        let executor = ScriptedExecutor()
        try await kind.with { store in
            let engine = handDriven(store, executor)
            // Driven one step at a time by hand: the run's charge is accepted, then its callback stored.
            let (id, drive) = try await startWaiting(engine, store)
            let token = try #require(try await token(store, id))
            #expect(try await store.park(runID: id, until: Date(timeIntervalSince1970: 2_000_000_000)), "nothing pending: parked")
            _ = try await store.receiveCallback(token: token, signal: .succeeded(output: ["id": "x"]), at: Date())
            #expect(try await store.park(runID: id, until: Date(timeIntervalSince1970: 2_000_000_000)) == false, "a stored callback waits to be applied")
            #expect(try await store.unfinishedRuns().map(\.id) == [id], "and the run is not parked: a restart loads it")
            drive.cancel()
            _ = await drive.result
        }
    }

    /// A cancel that comes after a participant's callback was stored (answered 200) but before it was handed to the run
    /// sees it, whether a driver holds the run or not: the charge succeeded, so it is compensated as done, with the
    /// callback's output, and not as an unknown outcome.
    @Test(arguments: [EngineStore.memory, .sqlite], [true, false])
    func aCancelAppliesTheCallbackStoredBeforeIt(on kind: EngineStore, driven: Bool) async throws {
        let executor = ScriptedExecutor()
        try await kind.with { store in
            let engine = handDriven(store, executor)
            let (id, drive) = try await startWaiting(engine, store)
            if !driven {
                drive.cancel()
                _ = await drive.result
                try await waitFor("no driver to hold the run") { engine.runs.heldCount == 0 }
            }
            let token = try #require(try await token(store, id))
            // Stored as the endpoint stores it, and not handed over (as when the hand-over lost a race with the cancel).
            _ = try await store.receiveCallback(token: token, signal: .succeeded(output: ["id": "ch_9"]), at: Date())
            _ = try await engine.cancel(runID: id, reason: "the customer left", by: "test")
            let kinds = try await store.events(runID: id, after: 0).map(\.event.kind)
            let received = try #require(kinds.firstIndex(of: .callbackReceived), "the stored callback was applied: \(kinds)")
            let cancelled = try #require(kinds.firstIndex(of: .runCancelled))
            #expect(received < cancelled)
            if driven {
                try await waitFor("the run to be compensated") { try await store.run(id: id)?.state.status == .compensated }
                _ = await drive.result
            } else {
                #expect(try await engine.drive(runID: id).status == .compensated)
            }
            let refund = try #require(executor.calls.last)
            #expect(refund.key.stepName == "charge" && refund.key.phase == .compensate)
            #expect(refund.context.callbackOutputs["charge"] == ["id": "ch_9"], "the compensation reads the callback's output")
        }
    }

    /// Runs exported while they wait for a callback travel with their token, and with a callback stored there and not
    /// yet applied (the server stopped in between): on the new store that callback is applied, the participant's token
    /// still works, and a completed callback's output travels too.
    @Test(arguments: EngineStore.tested)
    func aWaitingRunTravelsWithItsTokenAndItsStoredCallback(on kind: EngineStore) async throws {
        let exported = Mutex<[String]>([])
        let (first, second) = try await kind.with { store in
            let engine = handDriven(store)
            var ids: [String] = []
            for _ in 0..<2 {
                let (id, drive) = try await startWaiting(engine, store)
                drive.cancel()
                _ = await drive.result
                ids.append(id)
            }
            try await waitFor("no driver to hold the runs") { engine.runs.heldCount == 0 }
            _ = try await store.receiveCallback(token: try #require(try await token(store, ids[0])), signal: .heartbeat, at: Date())
            _ = try await store.receiveCallback(token: try #require(try await token(store, ids[0])), signal: .succeeded(output: ["id": "ch_1"]), at: Date())
            _ = try await StoreTransfer.export(from: store, source: "old", at: Date()) { line in exported.withLock { $0.append(line) } }
            return (ids[0], ids[1])
        }
        let bytes = exported.withLock { $0 }.map { Array($0.utf8) }
        let checked = try StoreTransfer.check(lines: bytes)
        try await kind.with { store in
            _ = try await StoreTransfer.importChecked(checked, lines: bytes, into: store, at: Date())
            let secondToken = try #require(try await token(store, second), "the token travelled with the run")
            let executor = ScriptedExecutor()
            let engine = handDriven(store, executor)
            #expect(try await engine.drive(runID: first).status == .completed, "the stored callback was applied on the new store")
            #expect(executor.calls.last?.context.callbackOutputs["charge"] == ["id": "ch_1"])
            let receipt = try await store.receiveCallback(token: secondToken, signal: .succeeded(output: ["id": "ch_2"]), at: Date())
            guard case .stored = receipt else { Issue.record("\(receipt)"); return }
            #expect(try await engine.drive(runID: second).status == .completed)
            // Exported again, a completed callback step keeps its output.
            var lines: [String] = []
            _ = try await StoreTransfer.export(from: store, source: "new", at: Date()) { lines.append($0) }
            for line in lines {
                guard case .run(let again) = try TransferFormat.record(Array(line.utf8), line: 1), again.run.id == first else { continue }
                #expect(again.run.state.steps[0].wait?.output == ["id": "ch_1"])
                #expect(again.run.state == (try await store.run(id: first))?.state)
            }
        }
    }

    /// On the injected clock: a heartbeat pushes the wait's deadline past where it was, and the step times out as an
    /// unknown outcome (compensated) only once a heartbeat is missed, at the pushed deadline.
    @Test(arguments: [EngineStore.memory, .sqlite])
    func aHeartbeatKeepsTheWaitAliveAndAMissedOneEndsItAtThePushedDeadline(on kind: EngineStore) async throws {
        let beating = Self.webhook.replacingOccurrences(of: #""callback": { "timeout": "10m" }"#, with: #""callback": { "timeout": "10m", "heartbeat": "1m" }"#)
        let executor = ScriptedExecutor()
        try await serving(kind, executor) { engine, store, clock in
            let t0 = clock.now()
            let id = try await engine.startRun(try saga(beating), input: [:])
            try await waitFor("the run to wait for its callback") { try await store.run(id: id)?.state.steps[0].status == .waiting }
            let token = try #require(try await token(store, id))
            #expect(try await store.run(id: id)?.state.steps[0].dueAt == t0.addingTimeInterval(60), "the first heartbeat is due a minute in")
            for seconds in [50.0, 100.0] {
                // Each heartbeat comes before the deadline the one before it set (50 s, then 100 s: past the first one).
                clock.advance(to: t0.addingTimeInterval(seconds))
                let receipt = try await engine.receiveCallback(token: token, signal: .heartbeat)
                guard case .stored = receipt else { Issue.record("heartbeat at \(seconds) s: \(receipt)"); return }
                try await waitFor("the heartbeat at \(seconds) s to be applied") {
                    try await store.run(id: id)?.state.steps[0].wait?.heartbeatAt == t0.addingTimeInterval(seconds)
                }
                let step = try #require(try await store.run(id: id)?.state.steps[0])
                #expect(step.status == .waiting && step.dueAt == t0.addingTimeInterval(seconds + 60))
            }
            clock.advance(to: t0.addingTimeInterval(161))
            try await waitFor("the run to be compensated") { try await store.run(id: id)?.state.status == .compensated }
            let timedOut = try #require(try await store.events(runID: id).first { $0.kind == .callbackTimedOut })
            #expect(timedOut.at == t0.addingTimeInterval(161))
            #expect(timedOut.data["heartbeatMissed"] == true)
            #expect(try await store.run(id: id)?.state.steps[0].outcomeUnknown == true)
            #expect(executor.calls.last?.key.phase == .compensate, "charge may have been applied: it is refunded")
        }
    }
}

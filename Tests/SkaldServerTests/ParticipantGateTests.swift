import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SkaldCore
import SkaldDemo
import SkaldHTTP
import SkaldSQLite
import Synchronization
import Testing
@testable import SkaldEngine
@testable import SkaldServer
import SkaldTestSupport

/// A participant on 127.0.0.1 that counts the calls it gets (and how many at once) and answers as told.
final class CountingParticipant: Sendable {
    enum Mode: Sendable {
        case ok
        /// 503 for the 1st, 3rd, 5th… call, 200 for the others.
        case failEveryOther
        case unavailable
        /// 200 to forward calls (POST), 503 to compensations (DELETE).
        case failCompensations
        /// 429 with `Retry-After: seconds` for the next call, then 200.
        case tooManyOnce(retryAfter: Int)
        /// Hold every call until `release()`, then answer 200.
        case park
    }

    struct State {
        var mode: Mode = .ok
        var calls = 0
        var compensations = 0
        var concurrent = 0
        var maxConcurrent = 0
        var parked: [CheckedContinuation<Void, Never>] = []
    }

    let state = Mutex(State())
    /// How long each answer is held, so that calls overlap (the participant's own pace, not a test's wait).
    let hold: Duration

    init(hold: Duration = .zero) {
        self.hold = hold
    }

    var calls: Int { state.withLock { $0.calls } }
    var compensations: Int { state.withLock { $0.compensations } }
    var maxConcurrent: Int { state.withLock { $0.maxConcurrent } }

    func set(_ mode: Mode) { state.withLock { $0.mode = mode } }

    var parkedCount: Int { state.withLock { $0.parked.count } }

    /// Answers the parked calls, and every later one at once.
    func release() {
        let parked = state.withLock { state in
            state.mode = .ok
            defer { state.parked = [] }
            return state.parked
        }
        for continuation in parked { continuation.resume() }
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("call") { _, _ in try await self.answer(compensation: false) }
        router.delete("call") { _, _ in try await self.answer(compensation: true) }
        return router
    }

    private func answer(compensation: Bool) async throws -> Response {
        let status = state.withLock { state -> (HTTPResponse.Status, Int?) in
            state.calls += 1
            if compensation { state.compensations += 1 }
            state.concurrent += 1
            state.maxConcurrent = max(state.maxConcurrent, state.concurrent)
            switch state.mode {
            case .ok: return (.ok, nil)
            case .failEveryOther: return (state.calls % 2 == 1 ? .serviceUnavailable : .ok, nil)
            case .unavailable: return (.serviceUnavailable, nil)
            case .failCompensations: return (compensation ? .serviceUnavailable : .ok, nil)
            case .park: return (.accepted, nil)
            case .tooManyOnce(let seconds):
                state.mode = .ok
                return (.tooManyRequests, seconds)
            }
        }
        if status.0 == .accepted {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let released = state.withLock { state -> Bool in
                    guard case .park = state.mode else { return true }
                    state.parked.append(continuation)
                    return false
                }
                if released { continuation.resume() }
            }
        }
        if hold > .zero { try await Task.sleep(for: hold) }
        state.withLock { $0.concurrent -= 1 }
        var headers = HTTPFields()
        if let retryAfter = status.1 { headers[.retryAfter] = "\(retryAfter)" }
        return Response(status: status.0, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{}")))
    }
}

/// An engine on a real SQLite file with a manual clock, sending to real participants over HTTP.
final class EventLog: Sendable {
    let events = Mutex<[(run: String, event: RunEvent)]>([])
}

struct GateHarness: Sendable {
    let engine: Engine
    let store: SQLiteStore
    let clock: ManualClock
    let log: EventLog

    static func with(
        participants: [CountingParticipant], serverWide: @Sendable @escaping ([Int]) -> [String: ParticipantSettings] = { _ in [:] },
        concurrency: Int = 256,
        _ body: @Sendable @escaping (GateHarness, [Int]) async throws -> Void
    ) async throws {
        try await LoopbackServers.withRunning(participants.map { $0.router() }) { ports in
            let store = try SQLiteStore(path: try await DatabaseKind.sqlite.newDatabase())
            let clock = ManualClock()
            let http = HTTPClient.makeForSteps()
            let collected = EventLog()
            var environment: [String: String] = [:]
            for (index, port) in ports.enumerated() { environment["P\(index)"] = "http://127.0.0.1:\(port)" }
            let engine = Engine(
                store: store, executor: HTTPStepExecutor(client: http), clock: clock,
                configuration: EngineConfiguration(
                    environment: environment, jitterSample: { 1 }, concurrency: concurrency, participants: serverWide(ports),
                    onEvents: { run, events in collected.events.withLock { $0 += events.map { (run.id, $0) } } }))
            let harness = GateHarness(engine: engine, store: store, clock: clock, log: collected)
            let engineTask = Task { try await engine.run() }
            let result: Result<Void, any Error>
            do { result = .success(try await body(harness, ports)) } catch { result = .failure(error) }
            engineTask.cancel()
            _ = await engineTask.result
            try await http.shutdown()
            try result.get()
        }
    }

    func count(_ kind: RunEvent.Kind) -> Int {
        log.events.withLock { $0.filter { $0.event.kind == kind }.count }
    }

    func gate(_ name: String) -> ParticipantStatus? {
        engine.participants.statuses().first { $0.id.name == name }
    }

    func statuses(_ ids: [String]) async throws -> [RunStatus] {
        var out: [RunStatus] = []
        for id in ids { out.append(try #require(try await store.run(id: id)).state.status) }
        return out
    }

    func waitUntilFinished(_ ids: [String]) async throws {
        try await waitFor("\(ids.count) runs to finish") {
            try await statuses(ids).allSatisfy(\.isTerminal)
        }
    }

    func get(_ uri: String) async throws -> JSONValue {
        let app = Application(router: buildRouter(engine: engine, store: store, configuration: APIConfiguration(token: nil)))
        return try await app.test(.router) { client in
            try await client.execute(uri: uri, method: .get) { response in
                try JSONParser.parse(String(buffer: response.body))
            }
        }
    }
}

/// A one-step saga calling participant P0 (a compensation too, when `compensated`), with the given participants section.
private func gatedSaga(
    participants: String, retry: String = #"{"maxAttempts": 2, "initialInterval": "1s", "jitter": "none"}"#, extraSteps: String = "",
    deadline: String? = nil
) throws -> SagaDefinition {
    try DefinitionParser.parse(
        Array(
            #"""
            {
              "name": "gated", "version": 1, \#(deadline.map { "\"deadline\": \"\($0)\"," } ?? "")
              "participants": \#(participants),
              "steps": [
                {
                  "name": "charge", "participant": "payments",
                  "request": { "method": "POST", "url": "{{env.P0}}/call", "timeout": "5m", "retry": \#(retry) },
                  "compensation": { "method": "DELETE", "url": "{{env.P0}}/call", "timeout": "5m", "retry": \#(retry) }
                }\#(extraSteps)
              ]
            }
            """#.utf8))
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct ParticipantGateTests {
    @Test func halfTheCallsFailingOpensTheCircuitAndWaitingRunsLoseNoAttempt() async throws {
        let payments = CountingParticipant()
        payments.set(.failEveryOther)
        try await GateHarness.with(participants: [payments]) { h, _ in
            let saga = try gatedSaga(
                participants: #"{"payments": {"circuitBreaker": {"windowCalls": 10, "minimumCalls": 10, "failureRate": 50, "openFor": "30s"}}}"#)
            var ids: [String] = []
            for _ in 0..<10 { ids.append(try await h.engine.startRun(saga, input: [:])) }
            try await waitFor("ten first attempts, five refused") {
                h.count(.attemptFailed) == 5 && h.count(.attemptSucceeded) == 5
            }
            #expect(h.gate("payments")?.state == .open)
            let openedAt = h.clock.now()
            // The five retries come due; the circuit holds them back without sending or counting them.
            payments.set(.ok)
            h.clock.advance(by: 1)
            try await waitFor("five runs to wait on the circuit") { h.count(.participantWaiting) == 5 }
            #expect(payments.calls == 10)
            let waiting = try #require(ids.first { id in h.log.events.withLock { $0.contains { $0.run == id && $0.event.kind == .participantWaiting } } })
            let shown = try await h.get("/v1/runs/\(waiting)")
            #expect(shown["steps"]?[0]?["waiting"]?["reason"] == "circuit_open")
            #expect(shown["steps"]?[0]?["attempts"] == 1)
            let listed = try await h.get("/v1/participants")
            #expect(listed["participants"]?[0]?["circuit"] == "open")
            #expect(listed["participants"]?[0]?["heldBack"] == 5)

            // Still open a moment before the probe: nothing reaches the participant.
            h.clock.advance(to: openedAt.addingTimeInterval(29))
            #expect(payments.calls == 10)
            h.clock.advance(to: openedAt.addingTimeInterval(30))
            try await h.waitUntilFinished(ids)
            #expect(try await h.statuses(ids) == Array(repeating: .completed, count: 10))
            // One probe, then the other four: the five refused runs used exactly their two attempts, the waits none.
            #expect(payments.calls == 15)
            #expect(h.count(.participantResumed) == 5)
            var attempts: [Int] = []
            for id in ids { attempts.append(try #require(try await h.store.run(id: id)).state.steps[0].attempts) }
            #expect(attempts.sorted() == [1, 1, 1, 1, 1, 2, 2, 2, 2, 2])
            #expect(h.gate("payments")?.state == .closed)
        }
    }

    @Test func aCompensationWaitsForTheCircuitInsteadOfFailing() async throws {
        let inventory = CountingParticipant()
        let refuser = CountingParticipant()
        refuser.set(.unavailable)
        try await GateHarness.with(participants: [inventory, refuser]) { h, _ in
            let saga = try gatedSaga(
                participants: #"{"payments": {"circuitBreaker": {"windowCalls": 1, "minimumCalls": 1, "failureRate": 100, "openFor": "30s"}}}"#,
                extraSteps: #"""
                    , { "name": "ship", "request": { "method": "POST", "url": "{{env.P1}}/call", "timeout": "5m", "retry": { "maxAttempts": 1 } } }
                    """#)
            inventory.set(.failCompensations)
            let id = try await h.engine.startRun(saga, input: [:])
            try await waitFor("the first compensation attempt to fail") { inventory.compensations == 1 && h.count(.attemptFailed) == 2 }
            #expect(h.gate("payments")?.state == .open)
            h.clock.advance(by: 1)
            try await waitFor("the compensation to wait on the circuit") { h.count(.participantWaiting) == 1 }
            #expect(try await h.statuses([id]) == [.compensating])
            inventory.set(.ok)
            h.clock.advance(by: 30)
            try await h.waitUntilFinished([id])
            let run = try #require(try await h.store.run(id: id))
            #expect(run.state.status == .compensated)
            #expect(run.state.steps[0].compensationAttempts == 2)
            #expect(inventory.compensations == 2)
        }
    }

    @Test func theDeadlinePassingWhileACircuitIsOpenCompensatesTheRun() async throws {
        let payments = CountingParticipant()
        let other = CountingParticipant()
        try await GateHarness.with(participants: [other, payments]) { h, _ in
            // "first" calls P0 (no participant), "charge" calls P1 through the breaker.
            let saga = try DefinitionParser.parse(
                Array(
                    #"""
                    {
                      "name": "deadline", "version": 1, "deadline": "20s",
                      "participants": {"payments": {"circuitBreaker": {"windowCalls": 1, "minimumCalls": 1, "failureRate": 100, "openFor": "60s"}}},
                      "steps": [
                        { "name": "first", "request": { "method": "POST", "url": "{{env.P0}}/call", "timeout": "5m" },
                          "compensation": { "method": "DELETE", "url": "{{env.P0}}/call", "timeout": "5m" } },
                        { "name": "charge", "participant": "payments",
                          "request": { "method": "POST", "url": "{{env.P1}}/call", "timeout": "5m", "retry": {"maxAttempts": 5, "initialInterval": "1s", "jitter": "none"} } }
                      ]
                    }
                    """#.utf8))
            payments.set(.unavailable)
            let id = try await h.engine.startRun(saga, input: [:])
            try await waitFor("the charge to fail once") { payments.calls == 1 && h.count(.attemptFailed) == 1 }
            h.clock.advance(by: 1)
            try await waitFor("the charge to wait on the circuit") { h.count(.participantWaiting) == 1 }
            h.clock.advance(by: 20)
            try await h.waitUntilFinished([id])
            let run = try #require(try await h.store.run(id: id))
            #expect(run.state.status == .compensated)
            #expect(h.count(.deadlinePassed) == 1)
            #expect(payments.calls == 1)
            #expect(other.compensations == 1)
        }
    }

    @Test func aBulkheadOfFourNeverLetsMoreThanFourThroughWhile200RunsUseIt() async throws {
        let payments = CountingParticipant(hold: .milliseconds(20))
        try await GateHarness.with(participants: [payments]) { h, _ in
            let saga = try gatedSaga(participants: #"{"payments": {"bulkhead": {"maxInFlight": 4}}}"#)
            var ids: [String] = []
            for _ in 0..<200 { ids.append(try await h.engine.startRun(saga, input: [:])) }
            try await h.waitUntilFinished(ids)
            #expect(try await h.statuses(ids).allSatisfy { $0 == .completed })
            #expect(payments.calls == 200)
            #expect(payments.maxConcurrent <= 4)
        }
    }

    @Test func aSlowParticipantBehindItsBulkheadLeavesTheEnginesSlotsToTheOthers() async throws {
        let slow = CountingParticipant()
        slow.set(.park)
        let other = CountingParticipant()
        // Four attempts in flight at most, engine-wide; the slow participant may hold two of them.
        try await GateHarness.with(participants: [slow, other], concurrency: 4) { h, _ in
            let gated = try gatedSaga(participants: #"{"payments": {"bulkhead": {"maxInFlight": 2}}}"#)
            var held: [String] = []
            for _ in 0..<10 { held.append(try await h.engine.startRun(gated, input: [:])) }
            try await waitFor("two calls parked at the slow participant, eight in line") {
                slow.parkedCount == 2 && h.gate("payments")?.queued == 8
            }
            let plain = try DefinitionParser.parse(
                Array(#"{"name": "plain", "version": 1, "steps": [{"name": "call", "request": {"method": "POST", "url": "{{env.P1}}/call", "timeout": "5m"}}]}"#.utf8))
            var others: [String] = []
            for _ in 0..<6 { others.append(try await h.engine.startRun(plain, input: [:])) }
            // The eight waiting in line hold none of the engine's slots, so the other participant's runs go at once.
            try await h.waitUntilFinished(others)
            #expect(try await h.statuses(held).allSatisfy { $0 == .running })
            #expect(slow.calls == 2)
            slow.release()
            try await h.waitUntilFinished(held)
            #expect(slow.calls == 10)
            #expect(slow.maxConcurrent <= 2)
        }
    }

    @Test func aRateLimitSendsOnlyWhatEachClockTickAllows() async throws {
        let payments = CountingParticipant()
        try await GateHarness.with(participants: [payments]) { h, _ in
            let saga = try gatedSaga(participants: #"{"payments": {"rateLimit": {"perSecond": 5, "burst": 5}}}"#)
            var ids: [String] = []
            for _ in 0..<20 { ids.append(try await h.engine.startRun(saga, input: [:])) }
            var perTick: [Int] = []
            var seen = 0
            for tick in 0..<4 {
                if tick > 0 { h.clock.advance(by: 1) }
                let expected = 5 * (tick + 1)
                try await waitFor("the calls of tick \(tick)") {
                    guard let gate = h.gate("payments") else { return false }
                    return payments.calls == expected && gate.inFlight == 0 && gate.queued == 20 - expected
                        && h.count(.attemptSucceeded) == expected
                }
                perTick.append(payments.calls - seen)
                seen = payments.calls
            }
            #expect(perTick == [5, 5, 5, 5])
            try await h.waitUntilFinished(ids)
        }
    }

    @Test func a429RetryAfterHoldsBackTheWholeParticipant() async throws {
        let payments = CountingParticipant()
        payments.set(.tooManyOnce(retryAfter: 10))
        try await GateHarness.with(participants: [payments]) { h, _ in
            let saga = try gatedSaga(participants: #"{"payments": {}}"#)
            let first = try await h.engine.startRun(saga, input: [:])
            try await waitFor("the 429") { h.count(.attemptFailed) == 1 }
            let second = try await h.engine.startRun(saga, input: [:])
            try await waitFor("the second run to queue behind the Retry-After") { h.gate("payments")?.queued == 1 }
            #expect(payments.calls == 1)
            #expect(h.gate("payments")?.pausedUntil != nil)
            h.clock.advance(by: 10)
            try await h.waitUntilFinished([first, second])
            #expect(try await h.statuses([first, second]) == [.completed, .completed])
            #expect(payments.calls == 3)
        }
    }

    @Test func aServerWideParticipantMatchesCallsByBaseURL() async throws {
        let payments = CountingParticipant()
        payments.set(.unavailable)
        try await GateHarness.with(
            participants: [payments],
            serverWide: { ports in
                [
                    "payments-api": ParticipantSettings(
                        baseURL: "http://127.0.0.1:\(ports[0])", circuitBreaker: CircuitBreakerSettings(window: .calls(1), minimumCalls: 1, failureRate: 100))
                ]
            }
        ) { h, _ in
            // A saga that names no participant: the server-wide one takes its calls by URL.
            let saga = try DefinitionParser.parse(
                Array(
                    #"{"name": "plain", "version": 1, "steps": [{"name": "charge", "request": {"method": "POST", "url": "{{env.P0}}/call", "timeout": "5m", "retry": {"maxAttempts": 3, "initialInterval": "1s", "jitter": "none"}}}]}"#
                        .utf8))
            let id = try await h.engine.startRun(saga, input: [:])
            try await waitFor("the first attempt") { h.count(.attemptFailed) == 1 }
            h.clock.advance(by: 1)
            try await waitFor("the run to wait on the server-wide circuit") { h.count(.participantWaiting) == 1 }
            #expect(payments.calls == 1)
            #expect(h.gate("payments-api")?.state == .open)
            #expect(try await h.statuses([id]) == [.running])
        }
    }

    @Test func aNewerVersionOfTheSagaSetsItsParticipantAndAnOlderOneDoesNotResetIt() async throws {
        let clock = ManualClock()
        let registry = ParticipantRegistry(serverWide: [:], clock: clock, metrics: EngineMetrics())
        func version(_ number: Int, openFor: String) throws -> SagaDefinition {
            try DefinitionParser.parse(
                Array(
                    #"""
                    {"name": "pay", "version": \#(number),
                     "participants": {"payments": {"circuitBreaker": {"windowCalls": 1, "minimumCalls": 1, "failureRate": 100, "openFor": "\#(openFor)"}}},
                     "steps": [{"name": "charge", "participant": "payments", "request": {"method": "POST", "url": "http://127.0.0.1:1/c"}}]}
                    """#.utf8))
        }
        let v1 = try version(1, openFor: "10s")
        let v2 = try version(2, openFor: "60s")
        _ = registry.gate(for: v1, step: 0) { nil }
        let gate = try #require(registry.gate(for: v2, step: 0) { nil })
        #expect(gate.status().settings.circuitBreaker?.openFor == .seconds(60))
        // A refused call opens the circuit; runs of v1 still calling it neither reset it nor bring back v1's settings.
        let ticket = gate.newTicket()
        guard case .granted(let permit) = await gate.admit(ticket: ticket, mayDefer: true) else {
            Issue.record("the first call was not let through")
            return
        }
        gate.finish(permit, outcome: .failed(AttemptFailure(kind: .transport, reason: "refused", isRetryable: true)), duration: .zero)
        #expect(gate.status().state == .open)
        let again = try #require(registry.gate(for: v1, step: 0) { nil })
        #expect(again === gate)
        #expect(gate.status().state == .open)
        #expect(gate.status().settings.circuitBreaker?.openFor == .seconds(60))
        #expect(gate.status().nextProbeAt == clock.now().addingTimeInterval(60))
    }
}

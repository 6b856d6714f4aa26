import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import SkaldCore
import Synchronization

/// The participant of `skald torture`: one service for every step, which honours `Idempotency-Key` (a key it
/// has seen gets the stored answer and changes nothing) and records every action it applies, in order, so
/// that the harness can check afterwards that nothing was applied twice or undone out of order.
///
/// What it does with a request depends on the run's input, sent in the body: `mode` is one of
/// - `happy`: answers 201 at once;
/// - `flaky`: answers 503 with `Retry-After: 0` to the first two requests for a key, then applies;
/// - `slow`: holds the first request for a key past the step's timeout, then applies it anyway (the answer
///   comes too late and Skald sends the request again with the same key);
/// - `decline`: the step named by `fail` answers 402;
/// - `hang`: every request for the step named by `fail` is answered only after the step's timeout, so Skald never
///   learns the outcome; the first is applied after a long wait (before or after Skald's compensation arrives:
///   both orders happen, and either way nothing may stay applied);
/// - `failundo`: like `decline`, and the compensations of the run fail (500) until the run is fixed
///   (`POST /fix/RUN`), so the run ends in `compensation_failed` until an operator acts;
/// - `cancel`: each step takes 100 ms, so a cancel sent meanwhile finds the run in the middle.
/// - `refuse200`: the step named by `fail` answers `200 {"refused": true}` and applies nothing (a saga's `failWhen`
///   makes it a refusal); `pending`: it answers `200 {"pending": true}` to the first two requests for a key,
///   applying nothing (a `retryWhen` retries it), then applies; `skip`: nothing of its own (a `when` skips a step).
/// - `callback`, `callbackfail`: a request carrying `notify` (a callback step's `{{callback.url}}`) is accepted with
///   202 and completed from a task of the participant's own 0–300 ms later: `succeeded` (the action is applied when
///   accepted), or, for the step named by `fail` in `callbackfail`, `failed` (nothing is applied). The callback is
///   posted to the server that runs now (`serverURL`: a killed server's successor has another port) until an answer
///   comes, and every callback answered 200 is recorded (`callbacksStored`).
///
/// It keeps the compensation contract (docs/semantics.md, "Participants: what a compensation may meet"): a compensation for a step it never applied answers
/// success with nothing to undo (and is not an action), and a forward request that arrives after its step's
/// compensation is refused (409), not applied.
public final class TortureParticipant: Sendable {
    /// One action applied, in the order they were applied.
    public struct Action: Sendable, Hashable {
        public var sequence: Int
        public var run: String
        public var step: String
        public var phase: Phase
    }

    private struct State {
        var answers: [String: (status: Int, body: String)] = [:]
        var attempts: [String: Int] = [:]
        var actions: [Action] = []
        var fixed: Set<String> = []
        var resolvedByHand: Set<String> = []
        var requests = 0
        /// `RUN:STEP` of every forward action applied, and of every step compensated (applied or not).
        var applied: Set<String> = []
        var compensated: Set<String> = []
        /// The callback URLs already given a callback (one per attempt's token).
        var notified: Set<String> = []
        /// `RUN:STEP` of every callback the server answered 200.
        var callbacksStored: Set<String> = []
        var serverURL: String?
    }

    private let state = Mutex(State())
    /// How long a `slow` request is held: longer than the torture sagas' timeouts.
    let slowHold: Duration

    public init(slowHold: Duration = .milliseconds(600)) {
        self.slowHold = slowHold
    }

    public var actions: [Action] { state.withLock { $0.actions } }
    /// `RUN:STEP` of every callback the server answered 200 (stored).
    public var callbacksStored: Set<String> { state.withLock { $0.callbacksStored } }
    /// Where callbacks go now: the running server's address.
    public func setServer(_ url: String?) { state.withLock { $0.serverURL = url } }
    public var requestCount: Int { state.withLock { $0.requests } }
    /// Requests received for each idempotency key (answered from the stored answer or not).
    public var requestsPerKey: [String: Int] { state.withLock { $0.attempts } }
    /// Compensations an operator recorded as done by hand (`RUN:STEP`).
    public var resolvedByHand: Set<String> { state.withLock { $0.resolvedByHand } }

    /// Lets the compensations of `run` succeed from now on.
    public func fix(run: String) { state.withLock { _ = $0.fixed.insert(run) } }

    /// Records that an operator undid `step` of `run` by hand (what `skald resolve` stands for).
    public func resolveByHand(run: String, step: String) { state.withLock { _ = $0.resolvedByHand.insert("\(run):\(step)") } }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/steps/:step") { request, context in
            try await self.handle(request, step: context.parameters.get("step") ?? "", phase: .forward)
        }
        router.delete("/steps/:step") { request, context in
            try await self.handle(request, step: context.parameters.get("step") ?? "", phase: .compensate)
        }
        return router
    }

    private func handle(_ request: Request, step path: String, phase: Phase) async throws -> Response {
        let key = request.headers[HTTPField.Name("Idempotency-Key")!] ?? ""
        // The step as Skald names it: for an item of a forEach step, `items[1]` (every item calls the same path).
        let step = request.headers[HTTPField.Name("Skald-Step")!] ?? path
        let run = request.headers[HTTPField.Name("Skald-Run")!] ?? ""
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        let body = (try? JSONParser.parse(String(buffer: buffer))) ?? .null
        let mode = body["mode"]?.stringValue ?? "happy"
        let failing = body["fail"]?.stringValue ?? ""

        // A key already answered gets the same answer and changes nothing.
        let (stored, attempt) = state.withLock { state -> ((status: Int, body: String)?, Int) in
            state.requests += 1
            state.attempts[key, default: 0] += 1
            return (state.answers[key], state.attempts[key]!)
        }
        if phase == .forward, mode == "hang", step == failing {
            // Past the timeout every time. The first request then applies (unless compensated meanwhile); the
            // others answer what is stored, or that the first is still in progress.
            try await Task.sleep(for: attempt == 1 ? slowHold * 6 : slowHold)
            if attempt > 1 {
                let stored = state.withLock { $0.answers[key] }
                return stored.map { Self.response($0.status, $0.body) } ?? Self.response(409, #"{"error": "in progress"}"#)
            }
            return record(key: key, run: run, step: step, phase: phase, status: 201, body: #"{"id": "\#(step)-\#(run)"}"#)
        }
        if phase == .forward, let notify = body["notify"]?.stringValue {
            let fails = mode == "callbackfail" && step == failing
            callBack(notify, run: run, step: step, succeeded: !fails)
            if let stored { return Self.response(stored.status, stored.body) }
            if fails {
                // Accepted, and nothing applied: the callback says it failed.
                let answer = state.withLock { state in
                    if state.answers[key] == nil { state.answers[key] = (202, #"{"accepted": true}"#) }
                    return state.answers[key]!
                }
                return Self.response(answer.status, answer.body)
            }
            return record(key: key, run: run, step: step, phase: phase, status: 202, body: #"{"id": "\#(step)-\#(run)"}"#)
        }
        if let stored { return Self.response(stored.status, stored.body) }

        let runStep = "\(run):\(step)"
        if phase == .forward, state.withLock({ $0.compensated.contains(runStep) }) {
            return record(key: key, run: run, step: step, phase: phase, status: 409, body: #"{"error": "compensated before it arrived"}"#)
        }
        switch (phase, mode) {
        case (.forward, "refuse200") where step == failing:
            // A 200 that says no: stored for the key like any answer, and nothing applied.
            let answer = state.withLock { state in
                if state.answers[key] == nil { state.answers[key] = (200, #"{"refused": true}"#) }
                return state.answers[key]!
            }
            return Self.response(answer.status, answer.body)
        case (.forward, "pending") where step == failing && attempt <= 2:
            return Self.response(200, #"{"pending": true}"#)
        case (.forward, "flaky") where attempt <= 2:
            var response = Self.response(503, #"{"error": "busy"}"#)
            response.headers[.retryAfter] = "0"
            return response
        case (.forward, "slow") where attempt == 1:
            try await Task.sleep(for: slowHold)
        case (.forward, "cancel"):
            try await Task.sleep(for: .milliseconds(100))
        case (.forward, "decline"), (.forward, "failundo"):
            if step == failing { return record(key: key, run: run, step: step, phase: phase, status: 402, body: #"{"error": "declined"}"#) }
        case (.compensate, "failundo"):
            if !state.withLock({ $0.fixed.contains(run) }) { return Self.response(500, #"{"error": "the undo service is down"}"#) }
        default:
            break
        }
        return record(key: key, run: run, step: step, phase: phase, status: phase == .forward ? 201 : 200, body: #"{"id": "\#(step)-\#(run)"}"#)
    }

    /// Posts the step's callback once per callback URL, from a task of its own, 0–300 ms from now, to the server that
    /// runs then, again until an answer comes (a killed server answers nothing).
    private func callBack(_ notify: String, run: String, step: String, succeeded: Bool) {
        guard state.withLock({ $0.notified.insert(notify).inserted }), let range = notify.range(of: "/v1/callbacks/") else { return }
        let path = String(notify[range.lowerBound...])
        let body: JSONValue = succeeded
            ? ["status": "succeeded", "output": ["id": .string("\(step)-\(run)")]]
            : ["status": "failed", "error": "declined"]
        Task {
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...300)))
            for _ in 0..<2_400 {
                if let base = state.withLock({ $0.serverURL }) {
                    var request = HTTPClientRequest(url: base + path)
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: body.jsonText))
                    if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5)), response.status.code < 500 {
                        if response.status == .ok { state.withLock { _ = $0.callbacksStored.insert("\(run):\(step)") } }
                        return
                    }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Applies the action (once per key), stores the answer for the key and answers. A compensation of a step that
    /// was never applied changes nothing: it answers success with nothing to undo.
    private func record(key: String, run: String, step: String, phase: Phase, status: Int, body: String) -> Response {
        let answer = state.withLock { state -> (status: Int, body: String) in
            if let stored = state.answers[key] { return stored }
            let name = "\(run):\(step)"
            if phase == .forward, state.compensated.contains(name) {
                state.answers[key] = (409, #"{"error": "compensated before it arrived"}"#)
                return state.answers[key]!
            }
            var body = body
            if (200..<300).contains(status) {
                if phase == .compensate {
                    state.compensated.insert(name)
                    if !state.applied.contains(name) {
                        body = #"{"status": "nothing_to_undo"}"#
                        state.answers[key] = (status, body)
                        return (status, body)
                    }
                } else {
                    state.applied.insert(name)
                }
                state.actions.append(Action(sequence: state.actions.count + 1, run: run, step: step, phase: phase))
            }
            state.answers[key] = (status, body)
            return (status, body)
        }
        return Self.response(answer.status, answer.body)
    }

    static func response(_ status: Int, _ body: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

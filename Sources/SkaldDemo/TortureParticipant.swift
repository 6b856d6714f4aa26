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
/// - `failundo`: like `decline`, and the compensations of the run fail (500) until the run is fixed
///   (`POST /fix/RUN`), so the run ends in `compensation_failed` until an operator acts;
/// - `cancel`: each step takes 100 ms, so a cancel sent meanwhile finds the run in the middle.
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
    }

    private let state = Mutex(State())
    /// How long a `slow` request is held: longer than the torture sagas' timeouts.
    let slowHold: Duration

    public init(slowHold: Duration = .milliseconds(600)) {
        self.slowHold = slowHold
    }

    public var actions: [Action] { state.withLock { $0.actions } }
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

    private func handle(_ request: Request, step: String, phase: Phase) async throws -> Response {
        let key = request.headers[HTTPField.Name("Idempotency-Key")!] ?? ""
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
        if let stored { return Self.response(stored.status, stored.body) }

        switch (phase, mode) {
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

    /// Applies the action (once per key), stores the answer for the key and answers.
    private func record(key: String, run: String, step: String, phase: Phase, status: Int, body: String) -> Response {
        let answer = state.withLock { state -> (status: Int, body: String) in
            if let stored = state.answers[key] { return stored }
            state.answers[key] = (status, body)
            if (200..<300).contains(status) {
                state.actions.append(Action(sequence: state.actions.count + 1, run: run, step: step, phase: phase))
            }
            return (status, body)
        }
        return Self.response(answer.status, answer.body)
    }

    static func response(_ status: Int, _ body: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

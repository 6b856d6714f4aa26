import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SkaldCore
import Synchronization

/// The participant `skald bench` runs in its own process: it answers as fast as it can, so the benchmark
/// measures Skald rather than the service it calls.
///
/// - `POST /ok/NAME` answers 200 with a small JSON body `{"id": "NAME-1", "ok": true}`.
/// - `POST /fail/NAME` answers 400 (a permanent failure: the saga compensates).
/// - `POST /hold/NAME?ms=N` answers 200 after N milliseconds.
/// - `POST /park/NAME` holds the request until `POST /control/release`, then answers 200 (and so do later ones).
/// - `POST /control/park` makes `/park` hold requests again after a release.
/// - `POST /flaky/NAME` answers 503 during an outage, else 200 like `/ok`.
/// - `POST /control/outage?after=MS&seconds=S` starts an outage of `/flaky` MS milliseconds from now (0: at its next
///   call), for S seconds.
/// - `POST /callback/NAME` answers 202 at once, then, from a task of its own after a random 0–500 ms, posts
///   `{"status": "succeeded", "output": {"id": …}}` to the body's `notify` (a callback step's `{{callback.url}}`).
///   `?never=1` never calls back. The time from that callback's 200 to the run's next request (to `/ok/…`, told
///   apart by its `Skald-Run` header) is recorded.
/// - `POST /control/callbacks {"via": [BASE-URL, …]}` sends each callback to the server after the one the run named,
///   and starts the callback figures again.
/// - `GET /control/stats` gives `{"requests": N, "parked": N, "outageCalls": N, "outageEndsAt": EPOCH-SECONDS,
///   "callbacks": N, "callbackErrors": N, "callbackToNextP50Ms": MS, "callbackToNextP99Ms": MS, "callbacksRedirected": N,
///   "holding": N, "peakHolding": N}` (`/hold` calls held now, and the most at once since `POST /control/peak`).
public final class BenchParticipant: Sendable {
    private let requests = Atomic<Int>(0)
    /// `/hold` calls being held now, and the most held at once since `POST /control/peak`.
    private let holding = Mutex<(now: Int, peak: Int)>((0, 0))
    private let parking = Mutex<Parking>(Parking())
    /// When `/flaky` fails (wall-clock seconds since 1970), and how many calls it failed.
    /// `pending`: the outage starts with the next call to `/flaky` and lasts that many seconds.
    private let outage = Mutex<(start: Double, end: Double, calls: Int, pending: Double?)>((0, 0, 0, nil))

    /// Callback steps: when each run's callback was answered 200, and the delays to its next request.
    private let callbacks = Mutex<(answeredAt: [String: ContinuousClock.Instant], delays: [Double], stored: Int, errors: Int)>(([:], [], 0, 0))
    /// With two or more servers (`skald bench-cluster`): their base URLs. A callback then goes to the server after the
    /// one whose URL the run gave (`POST /control/callbacks {"via": [URL, …]}`), so it reaches a node that does not
    /// drive the run, and is counted as redirected.
    private let callbackVia = Mutex<(bases: [String], redirected: Int)>(([], 0))
    /// The callbacks' own client: many at once, from the participant's tasks.
    private let callbackClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    private struct Parking {
        var released = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    public init() {}

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        let okBodies = Mutex<[String: ByteBuffer]>([:])
        router.post("/ok/:name") { request, context in
            self.requests.add(1, ordering: .relaxed)
            if let run = request.headers[HTTPField.Name("Skald-Run")!] {
                let now = ContinuousClock.now
                self.callbacks.withLock { callbacks in
                    if let answered = callbacks.answeredAt.removeValue(forKey: run) { callbacks.delays.append((now - answered).milliseconds) }
                }
            }
            let name = context.parameters.get("name") ?? "step"
            let body = okBodies.withLock { bodies in
                if let body = bodies[name] { return body }
                let body = ByteBuffer(string: #"{"id":"\#(name)-1","ok":true}"#)
                bodies[name] = body
                return body
            }
            return Self.response(.ok, body)
        }
        router.post("/flaky/:name") { _, context in
            self.requests.add(1, ordering: .relaxed)
            let now = Date().timeIntervalSince1970
            let down = self.outage.withLock { outage in
                if let seconds = outage.pending {
                    outage = (now, now + seconds, 0, nil)
                }
                guard now >= outage.start && now < outage.end else { return false }
                outage.calls += 1
                return true
            }
            if down { return Self.response(.serviceUnavailable, ByteBuffer(string: #"{"error":"outage"}"#)) }
            return Self.response(.ok, ByteBuffer(string: #"{"id":"\#(context.parameters.get("name") ?? "step")-1","ok":true}"#))
        }
        router.post("/control/outage") { request, _ in
            let after = Double(request.uri.queryParameters.get("after").flatMap { Int($0) } ?? 0) / 1000
            let seconds = Double(request.uri.queryParameters.get("seconds").flatMap { Int($0) } ?? 10)
            let start = Date().timeIntervalSince1970 + after
            // after=0: from the next call on, so that the first call surely meets it.
            self.outage.withLock { $0 = (start, start + seconds, 0, after == 0 ? seconds : nil) }
            return Self.response(.ok, ByteBuffer(string: #"{"start":\#(start),"end":\#(start + seconds)}"#))
        }
        router.post("/callback/:name") { request, _ in
            self.requests.add(1, ordering: .relaxed)
            let body = try JSONParser.parse(String(buffer: try await request.body.collect(upTo: 1 << 20)))
            guard let notify = body["notify"]?.stringValue, let run = request.headers[HTTPField.Name("Skald-Run")!] else {
                return Self.response(.badRequest, ByteBuffer(string: #"{"error":"notify and Skald-Run are needed"}"#))
            }
            if request.uri.queryParameters.get("never") == nil {
                let client = self.callbackClient
                Task {
                    try? await Task.sleep(for: .milliseconds(Int.random(in: 0...500)))
                    var url = notify
                    self.callbackVia.withLock { via in
                        guard let index = via.bases.firstIndex(where: { notify.hasPrefix($0 + "/") }) else { return }
                        url = via.bases[(index + 1) % via.bases.count] + notify.dropFirst(via.bases[index].count)
                        if via.bases.count > 1 { via.redirected += 1 }
                    }
                    var callback = HTTPClientRequest(url: url)
                    callback.method = .POST
                    callback.headers.add(name: "Content-Type", value: "application/json")
                    callback.body = .bytes(ByteBuffer(string: #"{"status":"succeeded","output":{"id":"paid-1"}}"#))
                    // As a participant should: a callback the server could not store (5xx, or no answer) is posted again.
                    var code: UInt?
                    for retry in 0..<8 {
                        code = try? await client.execute(callback, timeout: .seconds(60)).status.code
                        if let code, code < 500 { break }
                        try? await Task.sleep(for: .milliseconds(100 << retry))
                    }
                    let now = ContinuousClock.now
                    self.callbacks.withLock { callbacks in
                        if code == 200 {
                            callbacks.stored += 1
                            callbacks.answeredAt[run] = now
                        } else {
                            callbacks.errors += 1
                        }
                    }
                }
            }
            return Self.response(.accepted, ByteBuffer(string: #"{"accepted":true}"#))
        }
        router.post("/fail/:name") { _, _ in
            self.requests.add(1, ordering: .relaxed)
            return Self.response(.badRequest, ByteBuffer(string: #"{"error":"refused","message":"this step always fails"}"#))
        }
        router.post("/hold/:name") { request, context in
            self.requests.add(1, ordering: .relaxed)
            let milliseconds = request.uri.queryParameters.get("ms").flatMap { Int($0) } ?? 1000
            self.holding.withLock { holding in
                holding.now += 1
                holding.peak = max(holding.peak, holding.now)
            }
            defer { self.holding.withLock { $0.now -= 1 } }
            try await Task.sleep(for: .milliseconds(milliseconds))
            return Self.response(.ok, ByteBuffer(string: #"{"id":"held-1","ok":true}"#))
        }
        router.post("/park/:name") { _, _ in
            self.requests.add(1, ordering: .relaxed)
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let released = self.parking.withLock { parking in
                    if parking.released { return true }
                    parking.waiting.append(continuation)
                    return false
                }
                if released { continuation.resume() }
            }
            return Self.response(.ok, ByteBuffer(string: #"{"id":"parked-1","ok":true}"#))
        }
        router.post("/control/release") { _, _ in
            let waiting = self.parking.withLock { parking in
                parking.released = true
                defer { parking.waiting = [] }
                return parking.waiting
            }
            for continuation in waiting { continuation.resume() }
            return Self.response(.ok, ByteBuffer(string: #"{"released":\#(waiting.count)}"#))
        }
        router.post("/control/park") { _, _ in
            self.parking.withLock { $0.released = false }
            return Self.response(.ok, ByteBuffer(string: #"{"parking":true}"#))
        }
        router.post("/control/callbacks") { request, _ in
            let body = try JSONParser.parse(String(buffer: try await request.body.collect(upTo: 1 << 16)))
            let bases = body["via"]?.arrayValue?.compactMap(\.stringValue) ?? []
            self.callbackVia.withLock { $0 = (bases, 0) }
            // The callback figures start again for the next measurement.
            self.callbacks.withLock { $0 = ([:], [], 0, 0) }
            return Self.response(.ok, ByteBuffer(string: #"{"via":\#(bases.count)}"#))
        }
        router.post("/control/peak") { _, _ in
            // The most calls held at once is counted again from now.
            self.holding.withLock { $0.peak = $0.now }
            return Self.response(.ok, ByteBuffer(string: #"{"ok":true}"#))
        }
        router.get("/control/stats") { _, _ in
            let parked = self.parking.withLock { $0.waiting.count }
            let requests = self.requests.load(ordering: .relaxed)
            let outage = self.outage.withLock { $0 }
            let (stored, errors, delays) = self.callbacks.withLock { ($0.stored, $0.errors, $0.delays.sorted()) }
            let redirected = self.callbackVia.withLock { $0.redirected }
            let holding = self.holding.withLock { $0 }
            func percentile(_ p: Double) -> Double { delays.isEmpty ? 0 : delays[min(delays.count - 1, Int(Double(delays.count) * p))] }
            return Self.response(
                .ok,
                ByteBuffer(
                    string:
                        #"{"requests":\#(requests),"parked":\#(parked),"outageCalls":\#(outage.calls),"outageEndsAt":\#(outage.end),"callbacks":\#(stored),"callbackErrors":\#(errors),"callbackToNextP50Ms":\#(percentile(0.5)),"callbackToNextP99Ms":\#(percentile(0.99)),"callbacksRedirected":\#(redirected),"holding":\#(holding.now),"peakHolding":\#(holding.peak)}"#))
        }
        return router
    }

    static func response(_ status: HTTPResponse.Status, _ body: ByteBuffer) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: body))
    }
}

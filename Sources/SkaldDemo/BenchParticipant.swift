import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
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
/// - `GET /control/stats` gives `{"requests": N, "parked": N, "outageCalls": N, "outageEndsAt": EPOCH-SECONDS}`.
public final class BenchParticipant: Sendable {
    private let requests = Atomic<Int>(0)
    private let parking = Mutex<Parking>(Parking())
    /// When `/flaky` fails (wall-clock seconds since 1970), and how many calls it failed.
    /// `pending`: the outage starts with the next call to `/flaky` and lasts that many seconds.
    private let outage = Mutex<(start: Double, end: Double, calls: Int, pending: Double?)>((0, 0, 0, nil))

    private struct Parking {
        var released = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    public init() {}

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        let okBodies = Mutex<[String: ByteBuffer]>([:])
        router.post("/ok/:name") { _, context in
            self.requests.add(1, ordering: .relaxed)
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
        router.post("/fail/:name") { _, _ in
            self.requests.add(1, ordering: .relaxed)
            return Self.response(.badRequest, ByteBuffer(string: #"{"error":"refused","message":"this step always fails"}"#))
        }
        router.post("/hold/:name") { request, context in
            self.requests.add(1, ordering: .relaxed)
            let milliseconds = request.uri.queryParameters.get("ms").flatMap { Int($0) } ?? 1000
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
        router.get("/control/stats") { _, _ in
            let parked = self.parking.withLock { $0.waiting.count }
            let requests = self.requests.load(ordering: .relaxed)
            let outage = self.outage.withLock { $0 }
            return Self.response(
                .ok, ByteBuffer(string: #"{"requests":\#(requests),"parked":\#(parked),"outageCalls":\#(outage.calls),"outageEndsAt":\#(outage.end)}"#))
        }
        return router
    }

    static func response(_ status: HTTPResponse.Status, _ body: ByteBuffer) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: body))
    }
}

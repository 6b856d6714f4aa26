import AsyncHTTPClient
import Foundation
import Glibc
import SkaldCore
import SkaldDemo
import SkaldEngine
import Testing
@testable import SkaldServer
import SkaldTestSupport

/// A plain TCP connection to 127.0.0.1, for sending what no HTTP client would send.
struct RawConnection {
    let socket: Int32

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        // A safety net against a hung test, not a timing assertion: long, because a 2-core machine running the whole
        // suite has been seen to take more than 30 s to close a connection whose read timeout is 300 ms.
        var limit = timeval(tv_sec: 120, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything the server sends until it closes the connection (or the safety net ends the wait: nil).
    func readUntilClosed() -> String? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count == 0 { return String(decoding: received, as: UTF8.self) }
            // A signal (another test's child process exiting) interrupts the wait; it is not an answer.
            if count < 0, errno == EINTR { continue }
            if count < 0 { return errno == ECONNRESET ? String(decoding: received, as: UTF8.self) : nil }
            received += buffer[0..<count]
        }
    }

    func close() { Glibc.close(socket) }
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct LimitTests {
    @Test func aClientThatStopsSendingItsRequestIsDisconnected() async throws {
        try await Harness.with(readTimeout: .milliseconds(300)) { h in
            let connection = try RawConnection(port: h.port)
            defer { connection.close() }
            connection.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  // and never the blank line
            let answer = try #require(connection.readUntilClosed(), "the server kept the half-sent request open")
            #expect(!answer.contains("200 OK"))
        }
    }

    @Test func aRequestHeadOverTheLimitIsRefused() async throws {
        try await Harness.with { h in
            let connection = try RawConnection(port: h.port)
            defer { connection.close() }
            let big = String(repeating: "x", count: APIServerLimits.maxHeaderBytes + 1024)
            connection.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: \(big)\r\n\r\n")
            let answer = try #require(connection.readUntilClosed(), "the server kept the oversized request open")
            #expect(!answer.contains("200 OK"), "\(answer.prefix(200))")
            // Within the limit, the same request is answered.
            let fine = try RawConnection(port: h.port)
            defer { fine.close() }
            fine.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Small: \(String(repeating: "x", count: 1024))\r\nConnection: close\r\n\r\n")
            #expect(fine.readUntilClosed()?.contains("200 OK") == true)
        }
    }

    @Test func longPollsPastTheLimitAreAskedToComeBackAndAnInputOverItsLimitIsRefused() async throws {
        let api = APIConfiguration(maxBodyBytes: 64 * 1024, maxLongPolls: 1, maxInputBytes: 2 * 1024)
        try await Harness.with(api: api) { h in
            try await h.define()
            // One call that shipping holds, with a timeout long enough that nothing happens to the run meanwhile.
            let quiet = #"{"name": "quiet", "version": 1, "steps": [{"name": "ship", "request": {"method": "POST", "url": "{{env.SHIPPING_URL}}/shipments", "timeout": "5m", "body": {"orderId": "q-1", "address": {"city": "London"}}}}]}"#
            #expect(try await h.call(.post, "/v1/definitions", quiet).status == 201)
            await h.participants[.shipping].setFaults(Faults(hold: true))
            let (_, run) = try await h.call(.post, "/v1/runs", #"{"saga": "quiet"}"#)
            let id = try #require(run["id"]?.stringValue)
            await h.participants[.shipping].waitForHeld()
            let events = try await h.call(.get, "/v1/runs/\(id)/events")
            let last = events.json["lastSequence"]?.intValue ?? 0
            // The first poll waits (nothing happens while shipping holds the call); the next is over the limit.
            // Its own client: the test client sends one request at a time on one connection. It asks again while
            // refused (a short poll below may hold the one place at that moment).
            let port = h.port
            let first = Task {
                let http = HTTPClient(eventLoopGroupProvider: .singleton)
                defer { _ = http.shutdown() }
                while true {
                    let response = try await http.execute(
                        HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/runs/\(id)/events?after=\(last)&wait=30s"), timeout: .seconds(60))
                    if response.status.code != 429 { return Int(response.status.code) }
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            // Short polls until one is refused: then the long one is the poll waiting.
            try await waitFor("a second long poll to be refused") {
                try await h.call(.get, "/v1/runs/\(id)/events?after=\(last)&wait=1s").status == 429
            }
            // A poll that has events to return does not wait, so the limit does not apply to it.
            let answered = try await h.call(.get, "/v1/runs/\(id)/events?after=0&wait=30s")
            #expect(answered.status == 200 && answered.json["events"]?.arrayValue?.isEmpty == false, "\(answered.json)")
            await h.participants[.shipping].setFaults(Faults())
            await h.participants[.shipping].releaseHeld()
            #expect(try await first.value == 200)

            let big = DemoSagas.checkoutInput(orderId: String(repeating: "o", count: 3 * 1024), card: "4242424242424242")
            let refused = try await h.call(.post, "/v1/runs", #"{"saga": "checkout", "input": \#(big.jsonText)}"#)
            #expect(refused.status == 413)
            #expect(refused.json["error"]?["message"]?.stringValue?.contains("over the limit of 2048") == true)
        }
    }
}

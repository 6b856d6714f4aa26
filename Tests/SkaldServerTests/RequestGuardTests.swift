import Foundation
import Hummingbird
import HummingbirdTesting
import SkaldAPI
import SkaldCore
import SkaldDemo
import SkaldEngine
import Testing
@testable import SkaldServer
import SkaldTestSupport

/// The token, the Host check, the path's one spelling, the headers on every answer and the connection limit, against
/// the real router on a real server, with requests written byte for byte so that no client tidies them first.
@Suite(.serialized, .timeLimit(.minutes(10))) struct RequestGuardTests {
    static let token = "sekrit"

    /// The status line and body of one raw request. The socket blocks, so it is read on a thread of its own: on the
    /// concurrency pool it would hold one of the threads the server needs to answer.
    static func raw(_ port: Int, _ method: String, _ path: String, host: String = "127.0.0.1", headers: String = "", body: String = "")
        async throws -> (status: Int, text: String)
    {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try blockingRaw(port, method, path, host: host, headers: headers, body: body) })
            }
            thread.start()
        }
    }

    static func blockingRaw(_ port: Int, _ method: String, _ path: String, host: String, headers: String, body: String)
        throws -> (status: Int, text: String)
    {
        let connection = try RawConnection(port: port)
        defer { connection.close() }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\(headers)"
        if method == "POST" { head += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        connection.send(head + "\r\n" + body)
        let answer = try #require(connection.readUntilClosed(), "no answer to \(method) \(path)")
        let statusText = answer.split(separator: " ", maxSplits: 2).dropFirst().first ?? ""
        return (Int(statusText) ?? 0, answer)
    }

    /// Every spelling of a path that the router might read as the same route.
    static func spellings(of path: String) -> [String] {
        let inner = path.dropFirst()
        let firstSlash = inner.firstIndex(of: "/")
        var spellings = [
            "/" + path, path + "/", "/." + path, "/%2e" + path, "/x/.." + path, "/x/%2E%2E" + path, "/./" + inner, "//" + inner + "//",
            path.uppercased(),
        ]
        if let firstSlash {
            spellings.append("/" + inner[..<firstSlash] + "/" + inner[firstSlash...])  // /v1//runs
            spellings.append("/" + inner[..<firstSlash] + "/." + inner[firstSlash...])  // /v1/./runs
        }
        return spellings
    }

    @Test func noSpellingOfAGuardedPathReachesItsHandlerWithoutTheToken() async throws {
        var api = APIConfiguration(token: Self.token, maxBodyBytes: 64 * 1024)
        api.metrics = MetricsEndpoint(isPublic: false) { "skald_secret_metric 1\n" }
        try await Harness.with(api: api) { h in
            let (defined, _) = try await h.call(.post, "/v1/definitions", DemoSagas.withLongTimeouts(checkoutText), token: Self.token)
            #expect(defined == 201)
            let (_, run) = try await h.call(.post, "/v1/runs", #"{"saga": "checkout", "input": \#(input())}"#, token: Self.token)
            let runID = try #require(run["id"]?.stringValue)
            let table = RouteTable.withMetrics(isPublic: false)
            var checked = 0
            for route in table.routes where route.access == .token {
                let path = "/" + route.segments.map { $0.hasPrefix(":") ? (route.segments.contains("definitions") ? "checkout" : Substring(runID)) : $0 }
                    .joined(separator: "/")
                for method in route.methods {
                    let verb = method.rawValue
                    let body = verb == "POST" ? (path == "/v1/runs" ? #"{"saga": "checkout", "input": \#(input())}"# : #"{"note": "n", "step": "x"}"#) : ""
                    // The canonical spelling needs the token, and with it gets past the guard.
                    let refused = try await Self.raw(h.port, verb, path, body: body)
                    #expect(refused.status == 401, "\(verb) \(path) without the token: \(refused.text)")
                    let allowed = try await Self.raw(h.port, verb, path, headers: "Authorization: Bearer \(Self.token)\r\n", body: body)
                    #expect(allowed.status != 401, "\(verb) \(path) with the token: \(allowed.text)")
                    for spelling in Self.spellings(of: path) {
                        let answer = try await Self.raw(h.port, verb, spelling, body: body)
                        #expect([400, 401].contains(answer.status), "\(verb) \(spelling) without the token answered \(answer.text)")
                        // The answer is an error about the request only: no run, definition, document or metric in it.
                        let leaked = ["\"input\"", "\"steps\"", "\"events\"", "\"runs\"", "\"openapi\"", "\"definitions\"", "\"participants\"", "\"counts\"", "skald_secret_metric"]
                            .filter { answer.text.contains($0) }
                        #expect(leaked.isEmpty, "\(verb) \(spelling) leaked \(leaked): \(answer.text)")
                        checked += 1
                    }
                }
            }
            #expect(checked > 100)
            // A path no route has needs the token too: nothing is learnt about the routes without it.
            #expect(try await Self.raw(h.port, "GET", "/v1/nothing-here").status == 401)
            #expect(try await Self.raw(h.port, "DELETE", "/v1/runs").status == 401)
            // What is public stays public, in its one spelling.
            #expect(try await Self.raw(h.port, "GET", "/health").status == 200)
            #expect(try await Self.raw(h.port, "GET", "/").status == 200)
            #expect(try await Self.raw(h.port, "GET", "//health").status == 400)
        }
    }

    @Test func pathsWithEmptyOrDotSegmentsAreRefusedWithoutAToken() async throws {
        try await Harness.with { h in
            for path in ["//v1/runs", "/v1//runs", "/v1/runs/", "/./v1/runs", "/v1/../v1/runs", "/v1/%2e%2e/v1/runs"] {
                let answer = try await Self.raw(h.port, "GET", path)
                #expect(answer.status == 400, "\(path): \(answer.text)")
                #expect(answer.text.contains("bad_path"))
            }
            #expect(try await Self.raw(h.port, "GET", "/v1/runs").status == 200)
        }
    }

    @Test func aHostTheServerIsNotReachedByIsRefused() async throws {
        try await Harness.with { h in
            let start = #"{"saga": "checkout", "input": \#(input())}"#
            let rebound = try await Self.raw(
                h.port, "POST", "/v1/runs", host: "rebind.attacker.example:7421", headers: "Origin: http://rebind.attacker.example:7421\r\n",
                body: start)
            #expect(rebound.status == 421, "\(rebound.text)")
            #expect(rebound.text.contains("unknown_host") && rebound.text.contains("--allowed-host"))
            #expect(try await Self.raw(h.port, "GET", "/health", host: "evil.example").status == 421)
            for host in ["127.0.0.1:\(h.port)", "localhost:\(h.port)", "LOCALHOST", "console.localhost:\(h.port)", "[::1]:\(h.port)", "10.1.2.3"] {
                #expect(try await Self.raw(h.port, "GET", "/health", host: host).status == 200, "Host: \(host)")
            }
        }
        try await Harness.with(api: try Self.configuration(allowing: ["skald.example.com", "*.internal.example"])) { (h: Harness) async throws in
            #expect(try await Self.raw(h.port, "GET", "/health", host: "skald.example.com:7400").status == 200)
            #expect(try await Self.raw(h.port, "GET", "/health", host: "a.internal.example").status == 200)
            #expect(try await Self.raw(h.port, "GET", "/health", host: "internal.example.attacker.example").status == 421)
            #expect(try await Self.raw(h.port, "GET", "/health", host: "rebind.attacker.example").status == 421)
        }
    }

    static func configuration(allowing hosts: [String]) throws -> APIConfiguration {
        var api = APIConfiguration()
        api.hosts = try HostPolicy(listenHost: "127.0.0.1", allowed: hosts)
        return api
    }

    @Test func hostPolicyReadsNamesAndRefusesWhatIsNotOne() throws {
        let policy = try HostPolicy(listenHost: "skald.lan", allowed: ["API.Example.com.", "*.corp.example"])
        #expect(policy.allows(authority: "skald.lan:7400"))
        #expect(policy.allows(authority: "api.example.com"))
        #expect(policy.allows(authority: "x.y.corp.example:1"))
        #expect(!policy.allows(authority: "corp.example"))
        #expect(!policy.allows(authority: "api.example.com:http"))
        #expect(policy.allows(authority: nil))
        #expect(try HostPolicy(listenHost: "127.0.0.1", allowed: ["*"]).allows(authority: "anything.example"))
        #expect(throws: HostPolicy.Problem.self) { try HostPolicy(listenHost: "127.0.0.1", allowed: ["http://x.example"]) }
        #expect(throws: HostPolicy.Problem.self) { try HostPolicy(listenHost: "127.0.0.1", allowed: ["a b"]) }
    }

    @Test func everyAnswerSaysNotToSniffItsType() async throws {
        try await Harness.with(token: Self.token) { h in
            for (method, path) in [("GET", "/health"), ("GET", "/"), ("GET", "/v1/runs"), ("GET", "//v1/runs"), ("GET", "/nope")] {
                let answer = try await Self.raw(h.port, method, path)
                #expect(answer.text.lowercased().contains("x-content-type-options: nosniff"), "\(method) \(path): \(answer.text)")
            }
        }
    }

    @Test func connectionsPastTheLimitAreRefusedAtOnceAndTheRestCarryOn() async throws {
        let limit = ConnectionLimit(maximum: 3)
        try await Harness.with(connections: limit) { h in
            let idle = try (0..<3).map { _ in try RawConnection(port: h.port) }
            try await waitFor("the three idle connections to be counted", limit: .seconds(30)) { limit.current == 3 }
            let refused = try await Self.raw(h.port, "GET", "/health")
            #expect(refused.status == 503, "\(refused.text)")
            #expect(refused.text.contains("too_many_connections") && refused.text.lowercased().contains("retry-after: 1"))
            #expect(limit.refused >= 1)
            idle[0].close()
            try await waitFor("a closed connection to give its place back", limit: .seconds(30)) { limit.current < 3 }
            #expect(try await Self.raw(h.port, "GET", "/health").status == 200)
            for connection in idle.dropFirst() { connection.close() }
        }
    }
}

/// The token check on a guarded route's own handler holds by itself, whatever reached the handler.
@Suite(.timeLimit(.minutes(10))) struct RouteTokenTests {
    @Test func aGuardedHandlerRefusesARequestWithoutTheToken() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.group().add(middleware: RouteTokenMiddleware(token: "t0k")).get("/guarded") { _, _ in "secret" }
        router.group().add(middleware: RouteTokenMiddleware(token: nil)).get("/open") { _, _ in "open" }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/guarded", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/guarded", method: .get, headers: [.authorization: "Bearer wrong"]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/guarded", method: .get, headers: [.authorization: "Bearer t0k"]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/open", method: .get) { #expect($0.status == .ok) }
        }
    }
}

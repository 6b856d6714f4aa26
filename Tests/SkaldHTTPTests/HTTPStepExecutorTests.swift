import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import Synchronization
import SkaldCore
import SkaldDemo
import SkaldEngine
import Testing
@testable import SkaldHTTP
import SkaldTestSupport

/// A participant stand-in on 127.0.0.1 with one route per behaviour under test.
func testRouter() -> Router<BasicRequestContext> {
    let router = Router()
    router.post("/echo/:id") { request, context in
        let body = try await request.body.collect(upTo: 1 << 20)
        var headers: [String: JSONValue] = [:]
        for field in request.headers { headers[field.name.canonicalName] = .string(field.value) }
        let echo: JSONValue = [
            "id": .string(context.parameters.get("id") ?? ""), "query": .string(request.uri.query ?? ""),
            "headers": .object(headers), "body": (try? JSONParser.parse(String(buffer: body))) ?? .null,
        ]
        return Response(status: .created, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: echo.jsonText)))
    }
    router.get("/status/:code") { request, context in
        var headers = HTTPFields()
        if let retryAfter = request.uri.queryParameters.get("retryAfter") { headers[.retryAfter] = retryAfter }
        headers[.contentType] = "application/json"
        let code = Int(context.parameters.get("code") ?? "") ?? 500
        return Response(status: .init(code: code), headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"error":"status \#(code)"}"#)))
    }
    router.get("/text") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "plain words"))) }
    router.get("/empty") { _, _ in Response(status: .noContent) }
    router.get("/big") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024))) }
    // Sends its head at once, then the body one byte every 50 ms for up to a minute: a read timeout never
    // fires, only a deadline on the whole exchange does. Stops when the client goes away.
    router.get("/trickle") { _, _ -> Response in
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody { writer in
                for _ in 0..<1200 {
                    try await writer.write(ByteBuffer(string: " "))
                    try await Task.sleep(for: .milliseconds(50))
                }
                try await writer.write(ByteBuffer(string: "{}"))
                try await writer.finish(nil)
            })
    }
    router.get("/slow") { _, _ -> Response in
        try await Task.sleep(for: .seconds(5))
        return Response(status: .ok)
    }
    return router
}

func call(_ json: String) throws -> CallDefinition {
    let saga = try DefinitionParser.parse(Array(#"{"name":"t","version":1,"steps":[{"name":"s","request":\#(json)}]}"#.utf8))
    return try #require(saga.steps[0].request)
}

func request(_ call: CallDefinition, context: TemplateContext = TemplateContext(input: [:], runID: "R1", env: [:])) -> StepRequest {
    StepRequest(attempt: AttemptKey(runID: "R1", step: 0, stepName: "s", phase: .forward, number: 2), call: call, context: context)
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct HTTPStepExecutorTests {
    func withExecutor(maxResponseBytes: Int = 1 << 20, _ body: @Sendable @escaping (HTTPStepExecutor, String) async throws -> Void) async throws {
        try await LoopbackServers.withRunning([testRouter()]) { ports in
            let client = HTTPClient.makeForSteps()
            do {
                try await body(HTTPStepExecutor(client: client, maxResponseBytes: maxResponseBytes), "http://127.0.0.1:\(ports[0])")
                try await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
        }
    }

    @Test func sendsTheRenderedRequestWithIdempotencyAndTracingHeaders() async throws {
        try await withExecutor { executor, base in
            let definition = try call(#"""
                {"method": "POST", "url": "{{env.BASE}}/echo/{{input.id}}?q={{input.q}}", "headers": {"X-Order": "{{input.id}}"},
                 "body": {"n": "{{input.n}}", "tags": "{{input.tags}}", "text": "n={{input.n}}", "run": "{{run.id}}"}}
                """#)
            let context = TemplateContext(input: ["id": "a/b", "q": "x y", "n": 3, "tags": ["t1"]], runID: "R1", env: ["BASE": base])
            let outcome = await executor.execute(request(definition, context: context))
            guard case .succeeded(let response) = outcome else {
                Issue.record("expected success, got \(outcome)")
                return
            }
            #expect(response.status == 201)
            // The slash in the value was encoded, so it stayed one path segment.
            #expect(response.body["id"] == "a%2Fb")
            #expect(response.body["query"] == "q=x%20y")
            #expect(response.body["body"] == ["n": 3, "tags": ["t1"], "text": "n=3", "run": "R1"])
            let headers = try #require(response.body["headers"]?.objectValue)
            #expect(headers["idempotency-key"] == "R1:s:forward")
            #expect(headers["skald-run"] == "R1")
            #expect(headers["skald-step"] == "s")
            #expect(headers["skald-phase"] == "forward")
            #expect(headers["skald-attempt"] == "2")
            #expect(headers["x-order"] == "a/b")
            #expect(headers["content-type"] == "application/json")
        }
    }

    @Test func classifiesStatusesAndHonoursRetryAfter() async throws {
        try await withExecutor { executor, base in
            let unavailable = await executor.execute(request(try call(#"{"method": "GET", "url": "\#(base)/status/503?retryAfter=3"}"#)))
            guard case .failed(let failure) = unavailable else { Issue.record("expected failure"); return }
            #expect(failure.isRetryable)
            #expect(failure.kind == .status)
            #expect(failure.retryAfter == .seconds(3))
            #expect(failure.response?.status == 503)
            #expect(failure.reason.contains("HTTP 503"))
            #expect(!failure.mayHaveApplied, "an answer came")

            let declined = await executor.execute(request(try call(#"{"method": "GET", "url": "\#(base)/status/402"}"#)))
            guard case .failed(let permanent) = declined else { Issue.record("expected failure"); return }
            #expect(!permanent.isRetryable)
            #expect(permanent.reason.contains("status 402"))

            for code in [408, 425, 429, 500] {
                let outcome = await executor.execute(request(try call(#"{"method": "GET", "url": "\#(base)/status/\#(code)"}"#)))
                guard case .failed(let failure) = outcome else { Issue.record("expected failure for \(code)"); return }
                #expect(failure.isRetryable, "HTTP \(code) should be retryable")
            }
            let redirect = await executor.execute(request(try call(#"{"method": "GET", "url": "\#(base)/status/302"}"#)))
            guard case .failed(let notFollowed) = redirect else { Issue.record("a redirect is not success"); return }
            #expect(!notFollowed.isRetryable)
        }
    }

    @Test func keepsNonJSONBodiesAsTextAndEmptyBodiesAsNull() async throws {
        try await withExecutor { executor, base in
            let text = await executor.execute(request(try call(#"{"method": "GET", "url": "\#(base)/text"}"#)))
            #expect(text == .succeeded(StepResponse(status: 200, body: "plain words")))
            let empty = await executor.execute(request(try call(#"{"method": "GET", "url": "\#(base)/empty"}"#)))
            #expect(empty == .succeeded(StepResponse(status: 204, body: .null)))
        }
    }

    @Test func aResponseOverTheLimitFailsTheAttemptWithTheReason() async throws {
        try await withExecutor(maxResponseBytes: 1024) { executor, base in
            let outcome = await executor.execute(request(try call(#"{"method": "GET", "url": "\#(base)/big"}"#)))
            guard case .failed(let failure) = outcome else { Issue.record("expected failure"); return }
            #expect(failure.kind == .responseTooLarge)
            #expect(failure.reason.contains("larger than the limit of 1024 bytes"))
            #expect(failure.mayHaveApplied, "the status was never read")
        }
    }

    @Test func anAttemptPastItsDeadlineTimesOutAndIsRetryable() async throws {
        try await withExecutor { executor, base in
            let outcome = await executor.execute(request(try call(#"{"method": "GET", "url": "\#(base)/slow", "timeout": "200ms"}"#)))
            guard case .failed(let failure) = outcome else { Issue.record("expected failure"); return }
            #expect(failure.kind == .timeout)
            #expect(failure.isRetryable)
            #expect(failure.reason == "no complete response within 200ms")
            #expect(failure.mayHaveApplied)
        }
    }

    @Test func theDeadlineCoversTheResponseBodyNotJustItsHead() async throws {
        try await withExecutor { executor, base in
            // Without a deadline on the body this attempt would wait a minute and then succeed.
            let outcome = await executor.execute(request(try call(#"{"method": "GET", "url": "\#(base)/trickle", "timeout": "300ms"}"#)))
            guard case .failed(let failure) = outcome else { Issue.record("expected a timeout, got \(outcome)"); return }
            #expect(failure.kind == .timeout)
            #expect(failure.isRetryable)
            #expect(failure.reason == "no complete response within 300ms")
            #expect(failure.mayHaveApplied)
        }
    }

    @Test func aRetryAfterDateCenturiesAheadIsHeldToTheLimitInsteadOfTrapping() {
        let far = HTTPStepExecutor.parseRetryAfter("Sun, 01 Jan 300000 00:00:00 GMT")
        #expect(far == nil || far! <= DurationText.maximum)
    }

    @Test func anUnreachableParticipantIsARetryableTransportError() async throws {
        try await withExecutor { executor, _ in
            // Nothing listens on port 1 of the loopback address.
            let outcome = await executor.execute(request(try call(#"{"method": "GET", "url": "http://127.0.0.1:1/x", "timeout": "2s"}"#)))
            guard case .failed(let failure) = outcome else { Issue.record("expected failure"); return }
            #expect(failure.kind == .transport)
            #expect(failure.isRetryable)
            #expect(failure.reason.contains("127.0.0.1:1"))
            #expect(!failure.mayHaveApplied, "a refused connection carried nothing")
        }
    }

    @Test func aConnectionThatBreaksAfterTheRequestWasSentLeavesTheOutcomeUnknown() async throws {
        // A server that reads the whole request, then closes the connection without answering. The timeout is only
        // a guard: on a busy machine the hang-up may come late, and it must not be overtaken by the timeout.
        let received = ReceivedCount()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.pipeline.addHandler(HangUpAfterRequest(received: received))
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress?.port ?? 0
        let client = HTTPClient.makeForSteps()
        let outcome = await HTTPStepExecutor(client: client).execute(
            request(try call(#"{"method": "POST", "url": "http://127.0.0.1:\#(port)/ship", "body": {"a": 1}, "timeout": "60s"}"#)))
        try await client.shutdown()
        try await server.close()
        guard case .failed(let failure) = outcome else { Issue.record("expected failure, got \(outcome)"); return }
        #expect(failure.kind == .transport)
        #expect(failure.mayHaveApplied, "the participant read the request: it may have acted on it")
        #expect(received.value.withLock { $0 } >= 1)
    }

    @Test func aTemplateThatCannotBeRenderedFailsWithoutSending() async throws {
        try await withExecutor { executor, base in
            let outcome = await executor.execute(request(try call(#"{"method": "POST", "url": "\#(base)/echo/{{input.missing}}"}"#)))
            guard case .failed(let failure) = outcome else { Issue.record("expected failure"); return }
            #expect(failure.kind == .request)
            #expect(!failure.isRetryable)
            #expect(!failure.mayHaveApplied)
            #expect(failure.reason.contains("input has no field \"missing\""))
        }
    }

    @Test func parsesRetryAfterInBothForms() {
        #expect(HTTPStepExecutor.parseRetryAfter("120") == .seconds(120))
        #expect(HTTPStepExecutor.parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT") == .zero)
        #expect(HTTPStepExecutor.parseRetryAfter("soon") == nil)
    }
}

/// Reads a request up to the end of its body (a JSON object here), then closes the connection with no answer.
final class HangUpAfterRequest: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received: ReceivedCount

    init(received: ReceivedCount) { self.received = received }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: unwrapInboundIn(data))
        if text.contains("}") {
            received.value.withLock { $0 += 1 }
            context.close(promise: nil)
        }
    }
}

final class ReceivedCount: Sendable {
    let value = Mutex(0)
}

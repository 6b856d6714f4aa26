import AsyncHTTPClient
import Foundation
import NIOCore
import SkaldCore
import SkaldDemo
import SkaldEngine
import Testing
import SkaldTestSupport

/// W3C trace context with the real `skald serve`: what each participant receives.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct TraceTests {
    @Test(arguments: DatabaseKind.tested)
    func aRunContinuesTheCallersTraceAndEachAttemptIsASpanOfIt(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            // Patient timeouts: the test counts attempts, so a slow machine must not add a retry.
            let server = try await ServeProcess(
                db: try await kind.newDatabase(), environment: participants.environment, in: folder, sagas: try PatientSagas.folder(in: folder))
            defer { server.kill9() }
            let env = ["SKALD_SERVER": server.url]
            let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
            let callerSpan = "00f067aa0ba902b7"
            await participants[.payments].setFaults(Faults(failNext: 1))
            let started = try await SkaldProcess.run(
                ["start", "checkout", "--input", checkoutInput(orderId: "t-1"), "--watch", "--traceparent", "00-\(traceID)-\(callerSpan)-01",
                 "--tracestate", "congo=t61rcWkgMzE"], environment: env, in: folder)
            #expect(started.status == 0, "\(started.stdout)\(started.stderr)")
            let runID = try #require(started.stdout.components(separatedBy: "started run ").last?.components(separatedBy: " ").first)

            var received: [ReceivedTrace] = []
            for participant in Participant.Kind.allCases { received += await participants[participant].traces }
            #expect(received.count == 4, "reserve, charge twice, ship: \(received)")
            var spans: Set<String> = []
            for trace in received {
                let parts = try #require(trace.traceparent?.split(separator: "-").map(String.init))
                #expect(parts.count == 4 && parts[0] == "00")
                #expect(parts[1] == traceID, "every call is in the caller's trace")
                #expect(parts[2].count == 16 && parts[2] != callerSpan && parts[2] != String(repeating: "0", count: 16))
                #expect(parts[3] == "01")
                #expect(trace.tracestate == "congo=t61rcWkgMzE")
                spans.insert(parts[2])
            }
            #expect(spans.count == 4, "a span id per attempt, the retry's too")

            let status = try await SkaldProcess.run(["status", runID], environment: env, in: folder)
            #expect(status.stdout.contains("trace \(traceID)"), "\(status.stdout)")
            try await withHTTPClient { http in
                let run = try await APIClient(http: http, base: server.url).call(.GET, "/v1/runs/\(runID)").json
                #expect(run["traceId"]?.stringValue == traceID)
                #expect(run["traceparent"]?.stringValue == "00-\(traceID)-\(callerSpan)-01")
            }
        }
    }

    @Test func aRunWithoutAValidTraceparentStartsATraceOfItsOwn() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(
                db: try await DatabaseKind.sqlite.newDatabase(), environment: participants.environment, in: folder,
                sagas: try PatientSagas.folder(in: folder))
            defer { server.kill9() }
            try await withHTTPClient { http in
                let api = APIClient(http: http, base: server.url)
                var ids: [String] = []
                for header in [nil, "00-not-a-trace-01"] {
                    var request = HTTPClientRequest(url: server.url + "/v1/runs")
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    if let header { request.headers.add(name: "traceparent", value: header) }
                    request.headers.add(name: "tracestate", value: "ignored=1")
                    let body: JSONValue = ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "own-\(ids.count)")]
                    request.body = .bytes(ByteBuffer(string: body.jsonText))
                    let response = try await http.execute(request, timeout: .seconds(60))
                    #expect(response.status.code == 201)
                    let run = try JSONParser.parse(String(buffer: try await response.body.collect(upTo: 1 << 20)))
                    ids.append(try #require(run["id"]?.stringValue))
                }
                var traceIDs: Set<String> = []
                for id in ids {
                    try await waitFor("run \(id) to complete") { (try? await api.call(.GET, "/v1/runs/\(id)"))?.json["status"] == "completed" }
                    let traceID = try #require(try await api.call(.GET, "/v1/runs/\(id)").json["traceId"]?.stringValue)
                    #expect(traceID.count == 32 && traceID != String(repeating: "0", count: 32))
                    traceIDs.insert(traceID)
                    let shipped = await participants[.shipping].traces.filter { $0.idempotencyKey == "\(id):ship-order:forward" }
                    #expect(shipped.count == 1)
                    #expect(shipped.first?.traceparent?.contains("-\(traceID)-") == true)
                    #expect(shipped.first?.tracestate == nil, "a tracestate without a valid traceparent is not passed on")
                }
                #expect(traceIDs.count == 2, "each run its own trace")
            }
        }
    }
}

import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import SkaldCore
import SkaldDemo
import Synchronization
import Testing
import SkaldTestSupport

/// A payment provider that accepts a charge (202) and posts the result to the step's callback URL from its own task:
/// late, early (before its own answer), twice and then contradicting itself, as a failure, or never, as the run's
/// input says. It records what Skald answered to each callback it posted.
final class WebhookProvider: Sendable {
    struct State {
        /// The HTTP statuses Skald answered to the callbacks posted for each order, in order.
        var answers: [String: [Int]] = [:]
        var refunds: [String] = []
        var shipped: [String] = []
        /// Orders whose `ship` is answered 503 for now.
        var holdShipping: Set<String> = []
        /// Callback URLs of orders told to wait until the test posts for them.
        var pending: [String: String] = [:]
    }

    let state = Mutex(State())
    let http: HTTPClient

    init(http: HTTPClient) { self.http = http }

    func answers(_ order: String) -> [Int] { state.withLock { $0.answers[order] ?? [] } }

    func post(_ url: String, _ body: JSONValue, order: String) async -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body.jsonText))
        var status = 0
        if let response = try? await http.execute(request, timeout: .seconds(30)) { status = Int(response.status.code) }
        state.withLock { $0.answers[order, default: []].append(status) }
        return status
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/charges") { request, _ in
            let body = try JSONParser.parse(String(buffer: try await request.body.collect(upTo: 1 << 20)))
            let order = body["orderId"]?.stringValue ?? ""
            let notify = body["notify"]?.stringValue ?? ""
            let done: JSONValue = ["status": "succeeded", "output": ["chargeId": .string("ch-\(order)")]]
            switch body["mode"]?.stringValue {
            case "early":
                // The callback before the answer to the request it completes.
                _ = await self.post(notify, done, order: order)
            case "late":
                Task { _ = await self.post(notify, done, order: order) }
            case "twice":
                Task {
                    _ = await self.post(notify, done, order: order)
                    _ = await self.post(notify, done, order: order)
                    _ = await self.post(notify, ["status": "failed", "error": "changed our mind"], order: order)
                }
            case "fail":
                Task { _ = await self.post(notify, ["status": "failed", "error": "card declined"], order: order) }
            case "later":
                self.state.withLock { $0.pending[order] = notify }
            default:
                break  // never
            }
            return Response(status: .accepted, body: .init(byteBuffer: ByteBuffer(string: #"{"accepted": true}"#)))
        }
        router.post("/refunds/:key") { _, context in
            self.state.withLock { $0.refunds.append(context.parameters.get("key") ?? "") }
            return Response(status: .ok)
        }
        router.post("/ship/:charge") { _, context in
            let charge = context.parameters.get("charge") ?? ""
            let held = self.state.withLock { state in
                if state.holdShipping.contains(charge) { return true }
                state.shipped.append(charge)
                return false
            }
            return Response(status: held ? .serviceUnavailable : .ok)
        }
        return router
    }

    static let saga = """
        { "name": "webhook-pay", "version": 1,
          "defaults": { "timeout": "5s", "retry": { "maxAttempts": 20, "initialInterval": "100ms", "maxInterval": "500ms" } },
          "steps": [
          { "name": "charge", "callback": { "timeout": "3s" },
            "request": { "method": "POST", "url": "{{env.PROVIDER_URL}}/charges",
              "body": { "orderId": "{{input.orderId}}", "mode": "{{input.mode}}", "notify": "{{callback.url}}" } },
            "compensation": { "method": "POST", "url": "{{env.PROVIDER_URL}}/refunds/{{steps.charge.idempotencyKey}}" } },
          { "name": "ship", "request": { "method": "POST", "url": "{{env.PROVIDER_URL}}/ship/{{steps.charge.callback.output.chargeId}}" } }
        ] }
        """
}

/// Callback steps with the real binary, a provider that calls back from its own task over HTTP, and both stores.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct CallbackCLITests {
    func status(_ api: APIClient, _ id: String) async throws -> JSONValue {
        try await api.call(.GET, "/v1/runs/\(id)").json
    }

    @Test(arguments: DatabaseKind.tested)
    func participantsCallBackEarlyLateTwiceContradictingAndNever(on kind: DatabaseKind) async throws {
        try await withHTTPClient { http in
            let provider = WebhookProvider(http: http)
            try await LoopbackServers.withRunning([provider.router()]) { ports in
                let folder = try temporaryFolder()
                let sagas = folder.appendingPathComponent("sagas")
                try FileManager.default.createDirectory(at: sagas, withIntermediateDirectories: true)
                try WebhookProvider.saga.write(to: sagas.appendingPathComponent("webhook-pay.json"), atomically: true, encoding: .utf8)
                // The same with a wait long enough to outlast two restarts.
                let patient = WebhookProvider.saga.replacingOccurrences(of: "\"webhook-pay\"", with: "\"webhook-pay-patient\"")
                    .replacingOccurrences(of: #""callback": { "timeout": "3s" }"#, with: #""callback": { "timeout": "10m", "heartbeat": "5m" }"#)
                try patient.write(to: sagas.appendingPathComponent("webhook-pay-patient.json"), atomically: true, encoding: .utf8)
                let db = try await kind.newDatabase()
                let environment = ["PROVIDER_URL": "http://127.0.0.1:\(ports[0])"]
                var server = try await ServeProcess(db: db, environment: environment, in: folder, sagas: sagas.path)
                defer { server.kill9() }
                let api = APIClient(http: http, base: server.url)

                var runs: [String: String] = [:]
                for mode in ["late", "early", "twice", "fail", "never", "later"] {
                    let saga: JSONValue = mode == "later" ? "webhook-pay-patient" : "webhook-pay"
                    let (code, run) = try await api.call(.POST, "/v1/runs", ["saga": saga, "input": ["orderId": .string(mode), "mode": .string(mode)]])
                    #expect(code == 201, "\(run)")
                    runs[mode] = try #require(run["id"]?.stringValue)
                }
                for (mode, outcome) in [("late", "completed"), ("early", "completed"), ("twice", "completed"), ("fail", "compensated"), ("never", "compensated")] {
                    let id = try #require(runs[mode])
                    try await waitFor("the \(mode) run to be \(outcome)") { try await status(api, id)["status"] == .string(outcome) }
                }
                // Each callback answered 200 was applied: the next step read its output.
                #expect(provider.state.withLock { Set($0.shipped) } == ["ch-late", "ch-early", "ch-twice"])
                // The provider calls back once per request it gets; on a busy machine a request may be sent again after a
                // timeout, and its callback is then a repeat (200 again), or 410 for the token of an attempt a later one
                // replaced (README: "the step was sent again with a new token"). One is always applied.
                let settled: ([Int]) -> Bool = { answers in answers.contains(200) && answers.allSatisfy { $0 == 200 || $0 == 410 } }
                #expect(settled(provider.answers("late")), "\(provider.answers("late"))")
                #expect(settled(provider.answers("early")), "stored before the request's answer, applied once it came: \(provider.answers("early"))")
                #expect(Array(provider.answers("twice").prefix(3)) == [200, 200, 409], "a repeat is 200, a contradiction 409")
                #expect(!provider.answers("fail").isEmpty && provider.answers("fail").allSatisfy { $0 == 200 }, "\(provider.answers("fail"))")
                // A refusal by callback applied nothing: no refund. Silence is an unknown outcome: refunded in case.
                let refunds = provider.state.withLock { $0.refunds }.map { $0.removingPercentEncoding ?? $0 }
                // (A refund sent again under its key, after an attempt that timed out on a busy machine, is the same refund.)
                #expect(Set(refunds) == ["\(runs["never"]!):charge:forward"], "\(refunds)")
                let never = try await status(api, runs["never"]!)
                #expect(never["failure"]?["reason"] == "no callback within 3s", "\(never)")

                // The `later` run waits for its callback across a kill -9: the token is stored, and the next server takes it.
                let later = try #require(runs["later"])
                try await waitFor("the later run to wait for its callback") {
                    try await status(api, later)["steps"]?[0]?["status"] == "waiting"
                }
                let waitingStatus = try await NewcomerTests.run(["status", later, "--server", server.url], [:], in: folder)
                #expect(waitingStatus.stdout.contains("charge waiting for its callback since "), "\(waitingStatus.stdout)")
                server.kill9()
                _ = await server.waitForExit()
                server = try await ServeProcess(db: db, environment: environment, in: folder, sagas: sagas.path)
                let second = APIClient(http: http, base: server.url)
                let notify = try #require(provider.state.withLock { $0.pending["later"] })
                // The URL names the first server's address; the same path on the new server is the same step.
                let path = try #require(notify.range(of: "/v1/callbacks/")).lowerBound
                let moved = server.url + String(notify[path...])
                provider.state.withLock { $0.holdShipping.insert("ch-later") }
                let malformed = try await second.call(.POST, String(notify[path...]), ["status": "done"])
                #expect(malformed.status == 422 && malformed.json["error"]?["message"]?.stringValue?.contains("status") == true, "\(malformed.json)")
                #expect(await provider.post(moved, ["status": "heartbeat"], order: "later") == 200)
                #expect(await provider.post(moved, ["status": "succeeded", "output": ["chargeId": "ch-later"]], order: "later") == 200)
                // Killed at once after the callback's 200 (before the server applied it, or before the next step could
                // succeed): nothing is lost.
                server.kill9()
                _ = await server.waitForExit()
                server = try await ServeProcess(db: db, environment: environment, in: folder, sagas: sagas.path)
                let third = APIClient(http: http, base: server.url)
                provider.state.withLock { _ = $0.holdShipping.remove("ch-later") }
                do {
                    try await waitFor("the later run to complete", limit: .seconds(30)) { try await status(third, later)["status"] == "completed" }
                } catch {
                    let shown = try await status(third, later)
                    let events = try await third.call(.GET, "/v1/runs/\(later)/events").json
                    Issue.record("the later run did not complete: \(shown.prettyText)\n\(events.prettyText)")
                    throw error
                }
                #expect(provider.state.withLock { $0.shipped.contains("ch-later") })

                // Unknown tokens are 404; a step that no longer waits is 410; the history tells it all.
                let unknown = try await third.call(.POST, "/v1/callbacks/" + String(repeating: "ab", count: 32), ["status": "heartbeat"])
                #expect(unknown.status == 404)
                #expect(await provider.post(server.url + String(notify[path...]), ["status": "heartbeat"], order: "later-again") == 410)
                let history = try await third.call(.GET, "/v1/runs/\(later)/events").json["events"]?.arrayValue ?? []
                let kinds = history.compactMap { $0["kind"]?.stringValue }
                for kind in ["callback_accepted", "callback_heartbeat", "callback_received", "run_completed"] {
                    #expect(kinds.contains(kind), "\(kind) in \(kinds)")
                }
                let metrics = try await third.text("/metrics")
                #expect(metrics.text.contains("skald_steps_waiting{kind=\"callback\"} 0"), "\(metrics.text.prefix(400))")
            }
        }
    }

    /// Two nodes on PostgreSQL: a callback posted to the node that does not drive the run reaches the one that does
    /// (the run stays with its node while it waits: --park-after is longer than the wait), and one posted while no
    /// node holds the run (parked) is taken by the node that received it.
    @Test(.needs(.postgres)) func aCallbackToTheOtherNodeReachesTheRun() async throws {
        try await withHTTPClient { http in
            let provider = WebhookProvider(http: http)
            try await LoopbackServers.withRunning([provider.router()]) { ports in
                let folder = try temporaryFolder()
                let sagas = folder.appendingPathComponent("sagas")
                try FileManager.default.createDirectory(at: sagas, withIntermediateDirectories: true)
                let patient = WebhookProvider.saga.replacingOccurrences(of: #""callback": { "timeout": "3s" }"#, with: #""callback": { "timeout": "10m" }"#)
                try patient.write(to: sagas.appendingPathComponent("webhook-pay.json"), atomically: true, encoding: .utf8)
                let db = try await DatabaseKind.postgres.newDatabase()
                let environment = ["PROVIDER_URL": "http://127.0.0.1:\(ports[0])"]
                let nodes = [
                    try await ServeProcess(db: db, environment: environment, in: folder, sagas: sagas.path, extra: ["--park-after", "1h"]),
                    try await ServeProcess(db: db, environment: environment, in: folder, sagas: sagas.path, extra: ["--park-after", "1h"]),
                ]
                defer { for node in nodes { node.kill9() } }
                let api = APIClient(http: http, base: nodes[0].url)
                let (_, run) = try await api.call(.POST, "/v1/runs", ["saga": "webhook-pay", "input": ["orderId": "across", "mode": "later"]])
                let id = try #require(run["id"]?.stringValue)
                try await waitFor("the run to wait for its callback") { try await status(api, id)["steps"]?[0]?["status"] == "waiting" }
                let owner = try await withStore(db) { store in try await store.attempts(runID: id).first?.node }
                let other = try #require(nodes.first { $0.node != owner })
                let notify = try #require(provider.state.withLock { $0.pending["across"] })
                let path = try #require(notify.range(of: "/v1/callbacks/")).lowerBound
                #expect(await provider.post(other.url + String(notify[path...]), ["status": "succeeded", "output": ["chargeId": "ch-across"]], order: "across") == 200)
                try await waitFor("the run to complete") { try await status(api, id)["status"] == "completed" }
                #expect(provider.state.withLock { $0.shipped } == ["ch-across"])
                let ship = try await withStore(db) { store in try await store.attempts(runID: id).first { $0.key.stepName == "ship" }?.node }
                #expect(ship == owner, "the node that drives the run applied the callback and sent the next step")
            }
        }
    }
}

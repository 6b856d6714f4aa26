import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SkaldAPI
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldHTTP
import SkaldPostgres
import SkaldSQLite
import Synchronization
import Testing
@testable import SkaldServer
import SkaldTestSupport

let checkoutText = try! String(contentsOf: packageRoot.appendingPathComponent("Sagas/checkout.json"), encoding: .utf8)

/// A real engine on a real SQLite file, behind the real router, served over HTTP on 127.0.0.1, with the demo
/// participants as the services the sagas call.
struct Harness: Sendable {
    let client: any TestClientProtocol
    let store: any SagaStore
    /// The SQLite store, when the harness runs on SQLite (for tests of SQLite's own faults).
    let sqlite: SQLiteStore?
    let engine: Engine
    let participants: RunningParticipants
    /// The port the API listens on, for tests that talk to it with raw sockets.
    let port: Int

    /// - Parameters:
    ///   - concurrency: the engine's limit of attempts in flight.
    ///   - engineStore: what the engine stores through (the API reads the SQLite store itself).
    static func with(
        _ kind: DatabaseKind = .sqlite,
        token: String? = nil, concurrency: Int = 256, engineStore: (@Sendable (SQLiteStore) -> any SagaStore)? = nil,
        api: APIConfiguration? = nil, readTimeout: Duration = APIServerLimits.defaultReadTimeout, connections: ConnectionLimit? = nil,
        _ body: @Sendable @escaping (Harness) async throws -> Void
    ) async throws {
        try await Participant.withRunning { participants in
            let location = try await kind.newDatabase()
            let sqlite = kind == .sqlite ? try SQLiteStore(path: location) : nil
            let postgres = kind == .postgres ? try await PostgresStore.open(try PostgresLocation(url: location)) : nil
            let store: any SagaStore = sqlite ?? postgres!
            let http = HTTPClient.makeForSteps()
            let engine = Engine(
                store: sqlite.map { engineStore?($0) ?? $0 } ?? store, executor: HTTPStepExecutor(client: http),
                configuration: EngineConfiguration(environment: participants.environment, concurrency: concurrency))
            let app = Application(
                router: buildRouter(engine: engine, store: store, configuration: api ?? APIConfiguration(token: token, maxBodyBytes: 64 * 1024)),
                server: APIServerLimits.http1(readTimeout: readTimeout, connections: connections),
                configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            let engineTask = Task { try await engine.run() }
            do {
                try await app.test(.live) { client in
                    try await body(
                        Harness(client: client, store: store, sqlite: sqlite, engine: engine, participants: participants, port: client.port ?? 0))
                }
            } catch {
                engineTask.cancel()
                _ = await engineTask.result
                try? await http.shutdown()
                await postgres?.shutdown()
                throw error
            }
            engineTask.cancel()
            _ = await engineTask.result
            try await http.shutdown()
            await postgres?.shutdown()
        }
    }

    /// Sends a request and returns the status and the parsed JSON body.
    @discardableResult
    func call(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, token: String? = nil) async throws
        -> (status: Int, json: JSONValue)
    {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil || method == .post { headers[.contentType] = "application/json" }
        // Every POST carries a JSON object, `{}` when there is nothing to say.
        let sent = body ?? (method == .post ? "{}" : nil)
        return try await client.execute(uri: uri, method: method, headers: headers, body: sent.map { ByteBuffer(string: $0) }) { response in
            let text = String(buffer: response.body)
            return (Int(response.status.code), (try? JSONParser.parse(text)) ?? .string(text))
        }
    }

    /// Starts a checkout and waits until it has finished; returns its id.
    func finishedRun() async throws -> String {
        let (_, run) = try await call(.post, "/v1/runs", #"{"saga": "checkout", "input": \#(input())}"#)
        let id = try #require(run["id"]?.stringValue)
        _ = try await waitUntilFinished(id)
        return id
    }

    /// A checkout whose shipping refuses and whose refund keeps failing: it ends in compensation_failed at
    /// charge-card. Payments works again when this returns.
    func compensationFailedRun() async throws -> String {
        await participants[.shipping].setFaults(Faults(reject: true))
        await participants[.payments].setFaults(Faults(failCompensations: true))
        let (_, run) = try await call(.post, "/v1/runs", #"{"saga": "checkout", "input": \#(input())}"#)
        let id = try #require(run["id"]?.stringValue)
        #expect(try await waitUntilFinished(id)["status"] == "compensation_failed")
        await participants[.payments].setFaults(Faults())
        return id
    }

    /// Registers the example checkout with long timeouts: tests hold participants' answers, and on a busy machine a
    /// held call could outlast the example's one-second timeout and change the outcome the test is about.
    func define() async throws {
        let (status, _) = try await call(.post, "/v1/definitions", DemoSagas.withLongTimeouts(checkoutText))
        #expect(status == 201 || status == 200)
    }

    /// Waits (by long polling the API) until the run is finished, and returns it.
    func waitUntilFinished(_ runID: String) async throws -> JSONValue {
        var after: Int64 = 0
        for _ in 0..<200 {
            let (_, page) = try await call(.get, "/v1/runs/\(runID)/events?after=\(after)&wait=5s")
            after = page["lastSequence"]?.intValue ?? after
            if let status = page["status"]?.stringValue.flatMap(RunStatus.init(rawValue:)), status.isTerminal {
                return try await call(.get, "/v1/runs/\(runID)").json
            }
        }
        throw CancellationError()
    }
}

func input(card: String = "4242424242424242", orderId: String = "o-1") -> String {
    DemoSagas.checkoutInput(orderId: orderId, card: card).jsonText
}

@Suite(.serialized, .tags(.postgres), .timeLimit(.minutes(10))) struct APITests {
    @Test(arguments: DatabaseKind.tested)
    func aDrainingNodeIsNotReady(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await waitFor("the node to be ready") { try await h.call(.get, "/health/ready").status == 200 }
            h.engine.drain()
            let ready = try await h.call(.get, "/health/ready")
            #expect(ready.status == 503)
            #expect(ready.json["status"] == "not_ready")
            #expect(ready.json["reasons"]?.arrayValue?.contains { $0.stringValue?.contains("draining") == true } == true, "\(ready.json)")
            #expect(try await h.call(.get, "/health/live").status == 200, "a draining process is still alive")
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func healthAndDefinitions(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            let health = try await h.call(.get, "/health")
            #expect(health.status == 200)
            #expect(health.json["database"] == "ok")
            // The probes: live whenever the process answers; ready once the engine serves, and not while it drains.
            #expect(try await h.call(.get, "/health/live").json == ["status": "ok"])
            try await waitFor("the node to be ready") { try await h.call(.get, "/health/ready").status == 200 }
            #expect(try await h.call(.get, "/health/ready").json == ["status": "ready"])

            let registered = try await h.call(.post, "/v1/definitions", checkoutText)
            #expect(registered.status == 201)
            #expect(registered.json["name"] == "checkout")
            let again = try await h.call(.post, "/v1/definitions", checkoutText)
            #expect(again.status == 200)
            let changed = checkoutText.replacingOccurrences(of: "\"timeout\": \"2s\"", with: "\"timeout\": \"3s\"")
            let conflict = try await h.call(.post, "/v1/definitions", changed)
            #expect(conflict.status == 409)
            #expect(conflict.json["error"]?["message"]?.stringValue?.contains("bump \"version\"") == true)

            let list = try await h.call(.get, "/v1/definitions")
            #expect(list.json["definitions"]?.arrayValue?.count == 1)
            #expect(list.json["definitions"]?[0]?["steps"] == ["reserve-stock", "charge-card", "ship-order"])
            // Only GET /v1/definitions/{name} carries the definition: elsewhere it is left out, not sent as null.
            #expect(list.json["definitions"]?[0]?.objectValue?.keys.contains("definition") == false)
            #expect(registered.json.objectValue?.keys.contains("definition") == false)
            let one = try await h.call(.get, "/v1/definitions/checkout")
            #expect(one.json["definition"]?["name"] == "checkout")
            #expect(try await h.call(.get, "/v1/definitions/checkout?version=2").status == 404)
            #expect(try await h.call(.get, "/v1/definitions/nope").status == 404)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func anInvalidDefinitionGets422WithEveryPathAndNothingIsStored(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            let bad = #"{"name": "x", "version": 1, "steps": [{"name": "a", "request": {"method": "FETCH", "url": "ftp://x"}, "extra": 1}]}"#
            let (status, json) = try await h.call(.post, "/v1/definitions", bad)
            #expect(status == 422)
            #expect(json["error"]?["code"] == "invalid")
            let paths = (json["error"]?["details"]?["problems"]?.arrayValue ?? []).compactMap { $0["path"]?.stringValue }
            #expect(Set(paths) == ["steps[0].extra", "steps[0].request.method", "steps[0].request.url"])
            #expect(try await h.call(.post, "/v1/definitions", "{\"name\": ").status == 400)
            #expect(try await h.store.definitions().isEmpty)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func startAndFollowARunToCompletion(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await h.define()
            let (status, run) = try await h.call(.post, "/v1/runs", #"{"saga": "checkout", "input": \#(input())}"#)
            #expect(status == 201)
            let id = try #require(run["id"]?.stringValue)
            #expect(run["links"]?["events"] == .string("/v1/runs/\(id)/events"))
            let finished = try await h.waitUntilFinished(id)
            #expect(finished["status"] == "completed")
            // The card is marked writeOnly: the payments call had it, nobody reading the run does.
            #expect(finished["input"]?["card"] == "***")
            #expect(finished["input"]?["sku"] == "BLUE-MUG")
            #expect(finished["steps"]?[2]?["attemptLog"]?[0]?["idempotencyKey"] == .string("\(id):ship-order:forward"))
            // The saga's output, worked out from the completed run.
            #expect(finished["output"]?["shipment"] == finished["steps"]?[2]?["response"]?["body"]?["id"])
            #expect(finished["output"]?["orderId"] != nil && finished["output"]?["charge"]?.stringValue != nil)
            #expect(finished["outputError"] == nil)
            let history = try await h.call(.get, "/v1/runs/\(id)/events")
            let kinds = (history.json["events"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue }
            #expect(kinds.first == "run_started")
            #expect(kinds.last == "run_completed")
            let page = try await h.call(.get, "/v1/runs/\(id)/events?after=\(history.json["lastSequence"]?.intValue ?? 0)")
            #expect(page.json["events"] == [])
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func theSameIdempotencyKeyReturnsTheExistingRun(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await h.define()
            let body = #"{"saga": "checkout", "input": \#(input()), "idempotencyKey": "order-77"}"#
            let first = try await h.call(.post, "/v1/runs", body)
            let second = try await h.call(.post, "/v1/runs", body)
            #expect(first.status == 201)
            #expect(second.status == 200)
            #expect(first.json["id"] == second.json["id"])
            #expect(second.json["created"] == false)
            _ = try await h.waitUntilFinished(first.json["id"]?.stringValue ?? "")
            #expect(await h.participants[.payments].ledger.count == 1)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func listingFiltersAndPagesNewestFirst(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await h.define()
            var ids: [String] = []
            for (index, card) in ["4242424242424242", Participant.decliningCard, "4242424242424242"].enumerated() {
                let body: JSONValue = [
                    "saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "o\(index)", card: card), "idempotencyKey": .string("order-\(index)"),
                ]
                let (_, run) = try await h.call(.post, "/v1/runs", body.jsonText)
                ids.append(run["id"]?.stringValue ?? "")
                _ = try await h.waitUntilFinished(ids.last!)
            }
            let firstPage = try await h.call(.get, "/v1/runs?limit=2")
            #expect(firstPage.json["runs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[2], ids[1]])
            let cursor = try #require(firstPage.json["nextCursor"]?.stringValue)
            let secondPage = try await h.call(.get, "/v1/runs?limit=2&cursor=\(cursor)")
            #expect(secondPage.json["runs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[0]])
            #expect(secondPage.json["nextCursor"] == .null)
            let compensated = try await h.call(.get, "/v1/runs?status=compensated&saga=checkout")
            #expect(compensated.json["runs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[1]])
            #expect(try await h.call(.get, "/v1/runs?status=nope").status == 422)
            #expect(try await h.call(.get, "/v1/runs?limit=0").status == 422)
            // By idempotency key, and by when they started (how long ago: all three within the hour, none before it).
            let byKey = try await h.call(.get, "/v1/runs?idempotencyKey=order-1")
            #expect(byKey.json["runs"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[1]])
            #expect(try await h.call(.get, "/v1/runs?since=1h").json["runs"]?.arrayValue?.count == 3)
            #expect(try await h.call(.get, "/v1/runs?until=1h").json["runs"]?.arrayValue?.isEmpty == true)
            #expect(try await h.call(.get, "/v1/runs?since=99999999999d").json["runs"]?.arrayValue?.count == 3)
            #expect(try await h.call(.get, "/v1/runs?until=99999999999d").json["runs"]?.arrayValue?.isEmpty == true)
            #expect(try await h.call(.get, "/v1/runs?since=soon").status == 422)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func cancelCompensatesAndASecondCancelConflicts(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await h.define()
            // Shipping holds its request: the run waits in its last step.
            await h.participants[.shipping].setFaults(Faults(hold: true))
            let (_, run) = try await h.call(.post, "/v1/runs", #"{"saga": "checkout", "input": \#(input())}"#)
            let id = try #require(run["id"]?.stringValue)
            await h.participants[.shipping].waitForHeld()
            let cancelled = try await h.call(.post, "/v1/runs/\(id)/cancel", #"{"reason": "customer called", "by": "ana"}"#)
            #expect(cancelled.status == 200)
            #expect(cancelled.json["status"] == "compensating")
            let history = try await h.call(.get, "/v1/runs/\(id)/events").json["events"]?.arrayValue ?? []
            let event = history.first { $0["kind"] == "run_cancelled" }
            #expect(event?["message"] == "run cancelled by ana: customer called")
            #expect(event?["data"]?["by"] == "ana")
            await h.participants[.shipping].setFaults(Faults())
            await h.participants[.shipping].releaseHeld()
            let finished = try await h.waitUntilFinished(id)
            #expect(finished["status"] == "compensated")
            // The shipment booked while cancelling was undone too, then the charge, then the reservation.
            #expect(await h.participants[.shipping].ledger.map(\.action) == ["ship", "cancel"])
            #expect(await h.participants[.payments].ledger.map(\.action) == ["charge", "refund"])
            #expect(await h.participants[.inventory].ledger.map(\.action) == ["reserve", "release"])
            let again = try await h.call(.post, "/v1/runs/\(id)/cancel")
            #expect(again.status == 409)
            #expect(again.json["error"]?["code"] == "conflict")
            #expect(try await h.call(.post, "/v1/runs/NOPE/cancel").status == 404)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func abandonStopsARunWithoutUndoingAndKeepsTheNote(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await h.define()
            let id = try await h.compensationFailedRun()
            let noNote = try await h.call(.post, "/v1/runs/\(id)/abandon", #"{"by": "ana"}"#)
            #expect(noNote.status == 422)
            #expect(noNote.json["error"]?["message"]?.stringValue?.contains("\"note\" is required") == true)
            let abandoned = try await h.call(.post, "/v1/runs/\(id)/abandon", #"{"by": "ana", "note": "refunded by phone, ticket 4411"}"#)
            #expect(abandoned.status == 200)
            #expect(abandoned.json["status"] == "abandoned")
            let history = try await h.call(.get, "/v1/runs/\(id)/events").json["events"]?.arrayValue ?? []
            let event = try #require(history.last)
            #expect(event["kind"] == "run_abandoned")
            #expect(event["data"]?["by"] == "ana")
            #expect(event["message"]?.stringValue?.hasPrefix("ana abandoned the run: refunded by phone, ticket 4411") == true)
            // Nothing more was undone: the reservation stays as it was.
            #expect(await h.participants[.inventory].ledger.map(\.action) == ["reserve"])
            #expect(try await h.call(.post, "/v1/runs/\(id)/abandon", #"{"note": "again"}"#).status == 409)
            #expect(try await h.call(.post, "/v1/runs/\(id)/retry").status == 409)
            #expect(try await h.call(.get, "/v1/runs?status=abandoned").json["runs"]?.arrayValue?.count == 1)
            #expect(try await h.call(.post, "/v1/runs/NOPE/abandon", #"{"note": "x"}"#).status == 404)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func abandoningARunningRunSendsNothingMore(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await h.define()
            await h.participants[.shipping].setFaults(Faults(hold: true))
            let (_, run) = try await h.call(.post, "/v1/runs", #"{"saga": "checkout", "input": \#(input())}"#)
            let id = try #require(run["id"]?.stringValue)
            await h.participants[.shipping].waitForHeld()
            let abandoned = try await h.call(.post, "/v1/runs/\(id)/abandon", #"{"note": "shipped by hand"}"#)
            #expect(abandoned.json["status"] == "abandoned")
            await h.participants[.shipping].setFaults(Faults())
            await h.participants[.shipping].releaseHeld()
            // The held attempt's outcome is recorded; nothing is compensated or retried after it.
            try await waitFor("the attempt in flight to be recorded") {
                let steps = try await h.call(.get, "/v1/runs/\(id)").json["steps"]?.arrayValue ?? []
                return steps.last?["attemptLog"]?.arrayValue?.last?["outcome"] != "in_flight"
            }
            #expect(try await h.call(.get, "/v1/runs/\(id)").json["status"] == "abandoned")
            #expect(await h.participants[.payments].ledger.map(\.action) == ["charge"])
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func retryResumesACompensationFailedRun(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await h.define()
            let id = try await h.compensationFailedRun()
            #expect(try await h.call(.get, "/v1/runs/\(id)").json["compensationFailure"]?["step"] == "charge-card")
            #expect(try await h.call(.post, "/v1/runs/\(id)/cancel").status == 409)
            let retried = try await h.call(.post, "/v1/runs/\(id)/retry", #"{"by": "ana", "note": "payments is back"}"#)
            #expect(retried.status == 200)
            let done = try await h.waitUntilFinished(id)
            #expect(done["status"] == "compensated")
            let history = try await h.call(.get, "/v1/runs/\(id)/events")
            let event = history.json["events"]?.arrayValue?.first { $0["kind"] == "compensation_retried" }
            #expect(event?["message"] == "ana retried the compensation of charge-card: payments is back")
            #expect(await h.participants[.inventory].ledger.map(\.action) == ["reserve", "release"])
            #expect(try await h.call(.post, "/v1/runs/\(id)/retry").status == 409)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func resolveByHandContinuesTheWalkAndRecordsWhoAndWhy(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await h.define()
            let id = try await h.compensationFailedRun()
            #expect(try await h.call(.post, "/v1/runs/\(id)/resolve", #"{"step": "charge-card"}"#).status == 422)
            #expect(try await h.call(.post, "/v1/runs/\(id)/resolve", #"{"step": "reserve-stock", "note": "x"}"#).status == 409)
            let resolved = try await h.call(
                .post, "/v1/runs/\(id)/resolve", #"{"step": "charge-card", "note": "refunded in the bank's console", "by": "ana"}"#)
            #expect(resolved.status == 200)
            let done = try await h.waitUntilFinished(id)
            #expect(done["status"] == "compensated")
            #expect(await h.participants[.inventory].ledger.map(\.action) == ["reserve", "release"])
            let history = try await h.call(.get, "/v1/runs/\(id)/events")
            let event = history.json["events"]?.arrayValue?.first { $0["kind"] == "compensation_resolved" }
            #expect(event?["message"] == "ana resolved the compensation of charge-card by hand: refunded in the bank's console")
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func badRequestsGetTheRightStatusAndChangeNothing(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            try await h.define()
            let cases: [(String, Int, String)] = [
                ("{\"saga\": ", 400, "malformed_json"),
                ("[1]", 422, "invalid"),
                (#"{"saga": "checkout", "input": {}, "colour": "red"}"#, 422, "invalid"),
                (#"{"saga": 7}"#, 422, "invalid"),
                (#"{"saga": "nope", "input": {}}"#, 404, "not_found"),
                (#"{"saga": "checkout", "input": {"orderId": "x"}}"#, 422, "invalid"),
                (#"{"saga": "checkout", "version": "one", "input": {}}"#, 422, "invalid"),
                (String(repeating: " ", count: 70 * 1024), 413, "too_large"),
            ]
            for (body, status, code) in cases {
                let (got, json) = try await h.call(.post, "/v1/runs", body)
                #expect(got == status, "\(body.prefix(60))")
                #expect(json["error"]?["code"] == .string(code), "\(body.prefix(60))")
                #expect(json["error"]?["message"]?.stringValue?.isEmpty == false)
            }
            let missing = try await h.call(.post, "/v1/runs", #"{"saga": "checkout", "input": {"orderId": "x"}}"#)
            #expect(missing.json["error"]?["message"]?.stringValue?.contains("input lacks the required field \"card\"") == true)
            #expect(try await h.store.listRuns(RunQuery()).runs.isEmpty)
            #expect(try await h.call(.get, "/v1/runs/NOPE").status == 404)
            #expect(try await h.call(.get, "/v1/nothing-here").status == 404)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aTokenGuardsEveryV1RouteButNotHealth(kind: DatabaseKind) async throws {
        try await Harness.with(kind, token: "s3cret") { h in
            #expect(try await h.call(.get, "/health").status == 200)
            let denied = try await h.call(.get, "/v1/runs")
            #expect(denied.status == 401)
            #expect(denied.json["error"]?["code"] == "unauthorized")
            #expect(try await h.call(.get, "/v1/runs", token: "wrong").status == 401)
            #expect(try await h.call(.get, "/v1/runs", token: "s3cret").status == 200)
            #expect(try await h.call(.post, "/v1/definitions", checkoutText).status == 401)
            #expect(try await h.store.definitions().isEmpty)
        }
    }

    @Test func constantTimeCompareIsCorrect() {
        #expect(TokenCheck.constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!TokenCheck.constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!TokenCheck.constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!TokenCheck.constantTimeEquals([], Array("a".utf8)))
    }
}

@Suite(.timeLimit(.minutes(10))) struct OpenAPITests {
    @Test func theConsoleIsServedAtTheRootAsInTheRepositoryWithNothingFromElsewhere() async throws {
        let repository = try String(contentsOf: packageRoot.appendingPathComponent("console/console.html"), encoding: .utf8)
        #expect(ConsolePage.html == repository.trimmingCharacters(in: .newlines))
        // Nothing is fetched from another origin: no script, style or font from a URL.
        #expect(!ConsolePage.html.contains("src=\"http") && !ConsolePage.html.contains("href=\"http") && !ConsolePage.html.contains("@import"))
        try await Harness.with(token: "t0k") { h in
            // The page itself needs no token (it holds nothing); its API calls do.
            try await h.client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
                let policy = response.headers[.contentSecurityPolicy] ?? ""
                #expect(policy.contains("default-src 'none'"))
                // The page's one script by its hash; nothing inline besides it.
                #expect(policy.contains("script-src 'sha256-") && !policy.contains("script-src 'unsafe-inline'"), "\(policy)")
                #expect(ConsolePage.html.components(separatedBy: "<script").count == 2, "the CSP hash covers exactly one script")
                #expect(String(buffer: response.body).contains("<title>Skald console</title>"))
            }
            #expect(try await h.call(.get, "/v1/counts").status == 401)
        }
        try await Harness.with { h in
            try await h.define()
            _ = try await h.finishedRun()
            let counts = try await h.call(.get, "/v1/counts").json
            #expect(counts["counts"]?["completed"] == 1 && counts["counts"]?["running"] == 0 && counts["total"] == 1)
            #expect(counts["counts"]?.objectValue?.count == RunStatus.allCases.count, "every status, zero included")
        }
    }

    /// The endpoint list is the contract's one source: the document declares exactly its endpoints (path, method,
    /// operation id and query parameters, both ways), and each has a handler registered.
    @Test func theDocumentDeclaresExactlyTheEndpointList() throws {
        let document = try JSONParser.parse(OpenAPIDocument.text)
        let paths = try #require(document["paths"]?.objectValue)
        func signature(_ method: String, _ path: String, _ operationID: String, _ query: [String]) -> String {
            "\(method.uppercased()) \(path) \(operationID) ?\(query.sorted().joined(separator: ","))"
        }
        var documented: Set<String> = []
        for (path, item) in paths {
            for (method, operation) in item.objectValue ?? [:] where ["get", "post", "put", "patch", "delete"].contains(method) {
                let query = (operation["parameters"]?.arrayValue ?? []).filter { $0["in"] == "query" }.compactMap { $0["name"]?.stringValue }
                documented.insert(signature(method, path, operation["operationId"]?.stringValue ?? "?", query))
            }
        }
        let declared = Set((Endpoint.api + [Endpoint.metrics(isPublic: false)]).map {
            signature($0.method.rawValue, $0.documentedPath, $0.operationID, $0.query)
        })
        #expect(documented.subtracting(declared).isEmpty, "in docs/openapi.json but not in Endpoint.api: \(documented.subtracting(declared).sorted())")
        #expect(declared.subtracting(documented).isEmpty, "in Endpoint.api but not in docs/openapi.json: \(declared.subtracting(documented).sorted())")

        var configuration = APIConfiguration()
        configuration.metrics = MetricsEndpoint(isPublic: false) { "" }
        let router = buildRouter(engine: Engine(store: InMemoryStore(), executor: NoExecutor()), store: InMemoryStore(), configuration: configuration)
        let registered = Set(router.routes.map { "\($0.method) /\("\($0.path)".split(separator: "/").joined(separator: "/"))" })
        for endpoint in Endpoint.api + [Endpoint.metrics(isPublic: false)] {
            #expect(registered.contains("\(endpoint.method) \(endpoint.documentedPath)"), "\(endpoint) has no handler: \(registered.sorted())")
        }
    }

    @Test func aQueryParameterOfAnotherMethodOfThePathIsRefused() async throws {
        let router = buildRouter(engine: Engine(store: InMemoryStore(), executor: NoExecutor()), store: InMemoryStore())
        let app = Application(router: router)
        try await app.test(.router) { client in
            // listRuns takes ?status; startRun, on the same path, takes no query parameter.
            try await client.execute(uri: "/v1/runs?status=running", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .unprocessableContent)
                #expect(String(buffer: response.body).contains("POST /v1/runs takes no query parameters"))
            }
            try await client.execute(uri: "/v1/runs?status=running", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func everyRouteIsDocumentedAndTheServedDocumentIsTheOneInTheRepository() throws {
        let repository = try String(contentsOf: packageRoot.appendingPathComponent("docs/openapi.json"), encoding: .utf8)
        #expect(OpenAPIDocument.text == repository.trimmingCharacters(in: .newlines))
        let document = try JSONParser.parse(OpenAPIDocument.text)
        #expect(document["openapi"]?.stringValue?.hasPrefix("3.") == true)
        let paths = try #require(document["paths"]?.objectValue)
        var configuration = APIConfiguration()
        configuration.metrics = MetricsEndpoint(isPublic: false) { "" }
        let router = buildRouter(engine: Engine(store: InMemoryStore(), executor: NoExecutor()), store: InMemoryStore(), configuration: configuration)
        #expect(router.routes.count >= 12)
        for route in router.routes {
            // Hummingbird writes parameters as {id}/:id; OpenAPI as {id}.
            let path = "\(route.path)".split(separator: "/").map { segment -> String in
                segment.hasPrefix(":") ? "{\(segment.dropFirst())}" : String(segment)
            }.joined(separator: "/")
            let documented = paths["/" + path]?[route.method.rawValue.lowercased()]
            #expect(documented != nil, "\(route.method) /\(path) is not in docs/openapi.json")
        }
    }
}

struct NoExecutor: StepExecutor {
    func execute(_ request: StepRequest) async -> AttemptOutcome {
        .failed(AttemptFailure(kind: .request, reason: "no executor in this test", isRetryable: false))
    }
}

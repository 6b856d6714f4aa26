import Foundation
import Hummingbird
import SkaldCore
import SkaldDemo
import SkaldEngine
import Synchronization
import Testing
import SkaldTestSupport

/// A participant that records every request it gets and answers by path: `/ok` 201, `/echo` 400 with the
/// request's URL and headers in the body (as some services do in their error pages).
final class RecordingParticipant: Sendable {
    struct Received: Sendable {
        var path: String
        var headers: [String: String]
    }

    private let received = Mutex<[Received]>([])
    var requests: [Received] { received.withLock { $0 } }

    func router(port: @escaping @Sendable () -> Int) -> Router<BasicRequestContext> {
        let router = Router()
        router.on("/{path}", method: .post) { request, _ -> Response in
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            self.received.withLock { $0.append(Received(path: request.uri.path, headers: headers)) }
            if request.uri.path == "/echo" {
                let echo: JSONValue = ["error": "bad request", "_url": .string("http://127.0.0.1:\(port())\(request.uri.path)"), "headers": .object(headers.mapValues(JSONValue.string))]
                return Response(status: .badRequest, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: echo.jsonText)))
            }
            return Response(status: .created, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"id": "r-1"}"#)))
        }
        return router
    }
}

@Suite(.timeLimit(.minutes(10))) struct SecretsTests {
    static let token = "tok-6a1f-secret"
    static let password = "hunter2-db-secret"

    @Test func aDefinitionCannotReadTheServersSecretsAndNoValueIsShownAnywhere() async throws {
        let recorder = RecordingParticipant()
        let boundPort = Mutex(0)
        try await LoopbackServers.withRunning([recorder.router(port: { boundPort.withLock { $0 } })]) { ports in
            boundPort.withLock { $0 = ports[0] }
            let recorderURL = "http://127.0.0.1:\(ports[0])"
            let folder = try temporaryFolder()
            let db = folder.appendingPathComponent("s.sqlite").path
            let environment = [
                "SKALD_TOKEN": Self.token, "DATABASE_PASSWORD": Self.password, "RECORDER_URL": recorderURL,
                "RECORDER_KEY": "key-from-env-77", "RECORDER_DEAD": "http://127.0.0.1:1",
            ]
            let server = try await ServeProcess(db: db, environment: environment, in: folder, extra: ["--allow-env", "RECORDER_*"])
            let client = ["SKALD_SERVER": server.url, "SKALD_TOKEN": Self.token]
            try await withHTTPClient { http in
                let api = APIClient(http: http, base: server.url, token: Self.token)

                // Skald's own token and a variable the operator did not allow: refused when registered, at the field.
                let stealToken = try await api.call(.POST, "/v1/definitions", Self.saga("steal", url: "{{env.RECORDER_URL}}/ok/{{env.SKALD_TOKEN}}"))
                #expect(stealToken.status == 422)
                #expect(stealToken.json["error"]?["details"]?["problems"]?[0]?["path"] == "steps[0].request.url")
                let stealPassword = try await api.call(
                    .POST, "/v1/definitions", Self.saga("steal2", url: "{{env.RECORDER_URL}}/ok", headers: ["X-Db": "{{env.DATABASE_PASSWORD}}"]))
                #expect(stealPassword.status == 422)
                #expect(stealPassword.json["error"]?["details"]?["problems"]?[0]?["path"] == "steps[0].request.headers.X-Db")
                #expect(stealPassword.json["error"]?["message"]?.stringValue?.contains("--allow-env DATABASE_PASSWORD") == true)
                #expect(try await api.call(.GET, "/v1/definitions/steal2").status == 404)
                // What the operator's own files read (--sagas) is theirs: a new definition over the API may not read
                // it, though the same file registered again is fine.
                let borrowed = try await api.call(.POST, "/v1/definitions", Self.saga("borrow", url: "{{env.INVENTORY_URL}}/x"))
                #expect(borrowed.status == 422)
                let checkout = try JSONParser.parse(String(contentsOf: packageRoot.appendingPathComponent("Sagas/checkout.json"), encoding: .utf8))
                #expect(try await api.call(.POST, "/v1/definitions", checkout).status == 200)

                // Allowed variables work, and the participant gets the real values.
                let headers = ["Authorization": "Bearer literal-cred-999", "X-Api-Key": "{{env.RECORDER_KEY}}", "Cookie": "session=c00kie"]
                let good = try await api.call(
                    .POST, "/v1/definitions", Self.saga("good", url: "{{env.RECORDER_URL}}/ok", headers: headers, secretHeaders: ["X-Api-Key"]))
                #expect(good.status == 201, "\(good.json)")
                let shown = try await api.call(.GET, "/v1/definitions/good")
                let shownHeaders = shown.json["definition"]?["steps"]?[0]?["request"]?["headers"]
                #expect(shownHeaders == ["Authorization": "***", "X-Api-Key": "***", "Cookie": "***"])
                let ok = try await SkaldProcess.run(["start", "good", "--watch"], environment: client, in: folder)
                #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
                let sent = try #require(recorder.requests.first { $0.path == "/ok" })
                #expect(sent.headers["authorization"] == "Bearer literal-cred-999")
                #expect(sent.headers["x-api-key"] == "key-from-env-77")

                // Failures quote the request: the stored error shows references, not values.
                #expect(try await api.call(.POST, "/v1/definitions", Self.saga("echo", url: "{{env.RECORDER_URL}}/echo", headers: ["X-Api-Key": "{{env.RECORDER_KEY}}"])).status == 201)
                #expect(try await api.call(.POST, "/v1/definitions", Self.saga("dead", url: "{{env.RECORDER_DEAD}}/gone")).status == 201)
                let echoed = try await SkaldProcess.run(["start", "echo", "--watch"], environment: client, in: folder)
                #expect(echoed.status == 3, "\(echoed.stdout)\(echoed.stderr)")
                let dead = try await SkaldProcess.run(["start", "dead", "--watch"], environment: client, in: folder)
                #expect(dead.status == 3, "\(dead.stdout)\(dead.stderr)")
                #expect(dead.stdout.contains("{{env.RECORDER_DEAD}}/gone"), "\(dead.stdout)")

                // Nothing the server shows holds a value from its environment.
                let runs = try await api.call(.GET, "/v1/runs")
                var shownText = runs.json.jsonText + echoed.stdout + dead.stdout + ok.stdout
                for run in runs.json["runs"]?.arrayValue ?? [] {
                    let id = run["id"]?.stringValue ?? ""
                    shownText += try await api.call(.GET, "/v1/runs/\(id)").json.jsonText
                    shownText += try await api.call(.GET, "/v1/runs/\(id)/events").json.jsonText
                    shownText += try await SkaldProcess.run(["status", id], environment: client, in: folder).stdout
                    shownText += try await SkaldProcess.run(["history", id], environment: client, in: folder).stdout
                }
                #expect(shownText.contains("{{env.RECORDER_URL}}/echo"), "the echoed URL is shown as its reference")
                for secret in [Self.token, Self.password, "key-from-env-77", recorderURL, "literal-cred-999", "c00kie"] {
                    #expect(!shownText.contains(secret), "\(secret) is shown by the API or the CLI")
                }
            }
            server.terminate()
            #expect(await server.waitForExit() == 0)
            // Nor does the log, nor the database (which holds the definitions, with their templates, as registered).
            let log = server.process.stdout + server.process.stderr
            let database = try Data(contentsOf: URL(fileURLWithPath: db)) + ((try? Data(contentsOf: URL(fileURLWithPath: db + "-wal"))) ?? Data())
            for secret in [Self.token, Self.password, "key-from-env-77", recorderURL] {
                #expect(!log.contains(secret), "\(secret) is in the server's log")
                #expect(database.range(of: Data(secret.utf8)) == nil, "\(secret) is in the database")
            }
        }
    }

    static func saga(_ name: String, url: String, headers: [String: String] = [:], secretHeaders: [String] = []) -> JSONValue {
        var request: [String: JSONValue] = ["method": "POST", "url": .string(url), "body": ["n": 1]]
        if !headers.isEmpty { request["headers"] = .object(headers.mapValues(JSONValue.string)) }
        if !secretHeaders.isEmpty { request["secretHeaders"] = .array(secretHeaders.map(JSONValue.string)) }
        return [
            "name": .string(name), "version": 1,
            // Generous: the recorder answers at once, but a loaded 2-core machine may take seconds to schedule it.
            "defaults": ["timeout": "30s", "retry": ["maxAttempts": 1]],
            "steps": [["name": "call", "request": .object(request)]],
        ]
    }
}

/// `--data-key`: the writeOnly fields of run inputs are sealed in the database, opened only in memory to render the
/// calls; a node without the key leaves such runs alone instead of sending the sealed value.
@Suite(.timeLimit(.minutes(10))) struct DataKeyTests {
    static let key = "q0kUuPZ8b7s7cYKx1qVv2mXk3r5n8mW0ZyC1dE2fG3I="
    static let card = "4111111111119876"

    @Test func writeOnlyInputIsSealedAtRestAndOpenedOnlyByANodeWithTheKey() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = folder.appendingPathComponent("k.sqlite").path
            let sagas = try PatientSagas.folder(in: folder)
            // The first step is held, so the card is not sent before the kill: after it, it can only come from the store.
            await participants[.inventory].setFaults(Faults(hold: true))
            let first = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas, extra: ["--data-key", Self.key])
            let runID = try await withHTTPClient { http in
                let (status, run) = try await APIClient(http: http, base: first.url).call(
                    .POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "sealed-1", card: Self.card)])
                #expect(status == 201)
                #expect(run["input"]?["card"] == "***")
                return try #require(run["id"]?.stringValue)
            }
            await participants[.inventory].waitForHeld()
            first.kill9()
            _ = await first.waitForExit()
            await participants[.inventory].setFaults(Faults())
            await participants[.inventory].releaseHeld()
            let stored = try Data(contentsOf: URL(fileURLWithPath: db)) + ((try? Data(contentsOf: URL(fileURLWithPath: db + "-wal"))) ?? Data())
            #expect(stored.range(of: Data(Self.card.utf8)) == nil, "the card is in the database file")
            #expect(stored.range(of: Data(DataKey.marker.utf8)) != nil, "the sealed value is in the database file")

            // Without the key: the run is left alone (not failed, nothing sent for it), and /health says why.
            let keyless = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            try await withHTTPClient { http in
                let api = APIClient(http: http, base: keyless.url)
                try await waitFor("the keyless node to say it cannot run checkout", limit: .seconds(60)) {
                    (try? await api.call(.GET, "/health"))?.json["warnings"]?.arrayValue?.first?.stringValue?.contains("no --data-key") == true
                }
                #expect(try await api.call(.GET, "/v1/runs/\(runID)").json["status"] == "running")
            }
            keyless.terminate()
            #expect(await keyless.waitForExit() == 0)
            #expect(await participants[.payments].ledger.isEmpty, "nothing reached payments without the key")

            // With the key: the stored card is opened and sent, and the run completes.
            let keyed = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas, extra: ["--data-key", Self.key])
            try await withHTTPClient { http in
                let api = APIClient(http: http, base: keyed.url)
                try await waitFor("the run to complete", limit: .seconds(120)) {
                    (try? await api.call(.GET, "/v1/runs/\(runID)"))?.json["status"] == "completed"
                }
            }
            #expect(await participants[.payments].ledger.map(\.action) == ["charge"])
            // A writeOnly field that looks like a sealed value is refused at start: it would be taken for one.
            try await withHTTPClient { http in
                var input = DemoSagas.checkoutInput(orderId: "sealed-2")
                if case .object(var members) = input {
                    members["card"] = [DataKey.marker: "v1:AAAA"]
                    input = .object(members)
                }
                let refused = try await APIClient(http: http, base: keyed.url).call(.POST, "/v1/runs", ["saga": "checkout", "input": input])
                #expect(refused.status == 422, "\(refused.json)")
            }
            keyed.terminate()
            #expect(await keyed.waitForExit() == 0)
            // The export carries the sealed value, not the card.
            let export = folder.appendingPathComponent("k.export").path
            let exported = try await SkaldProcess.run(["export", "--db", db, "--output", export], in: folder)
            #expect(exported.status == 0, "\(exported.stderr)")
            let text = try String(contentsOfFile: export, encoding: .utf8)
            #expect(!text.contains(Self.card) && text.contains(DataKey.marker))
        }
    }

    @Test func aKeyThatIsNotThirtyTwoBytesIsRefusedAtStart() async throws {
        let folder = try temporaryFolder()
        let refused = try await SkaldProcess.run(
            ["serve", "--db", folder.appendingPathComponent("x.sqlite").path, "--port", "0", "--data-key", "too-short"], in: folder)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--data-key: a data key is 32 random bytes"), "\(refused.stderr)")
        #expect(throws: DataKey.Problem.self) { try DataKey(text: "c2hvcnQ=") }
        #expect((try? DataKey(text: String(repeating: "ab", count: 32))) != nil)
    }
}

import Foundation
import Hummingbird
import SkaldCore
import SkaldDemo
import Synchronization
import Testing

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

@Suite struct SecretsTests {
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
            "defaults": ["timeout": "2s", "retry": ["maxAttempts": 1]],
            "steps": [["name": "call", "request": .object(request)]],
        ]
    }
}

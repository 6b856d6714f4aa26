import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

/// The real binary with a participants file: a circuit that opens is shown by `skald status`, `skald participants`,
/// the history, the metrics and `skald plan`; a bad file stops the start with its located problems.
@Suite(.timeLimit(.minutes(10))) struct ParticipantCLITests {
    /// Calls 127.0.0.1:1, where nothing listens: every attempt is refused at once (a transport failure).
    static let saga = #"""
        {
          "name": "gated", "version": 1,
          "participants": { "payments": {} },
          "steps": [
            { "name": "charge", "participant": "payments",
              "request": { "method": "POST", "url": "http://127.0.0.1:1/charges", "timeout": "5m",
                           "retry": { "maxAttempts": 5, "initialInterval": "100ms", "jitter": "none" } } }
          ]
        }
        """#

    static let participants = #"""
        {
          "participants": {
            "payments": { "circuitBreaker": { "windowCalls": 1, "minimumCalls": 1, "failureRate": 100, "openFor": "5m" }, "bulkhead": { "maxInFlight": 8 } }
          }
        }
        """#

    @Test func anOpenCircuitIsShownByStatusParticipantsHistoryMetricsAndPlan() async throws {
        let folder = try temporaryFolder()
        let sagas = folder.appendingPathComponent("sagas")
        try FileManager.default.createDirectory(at: sagas, withIntermediateDirectories: true)
        let sagaFile = sagas.appendingPathComponent("gated.json")
        try Data(Self.saga.utf8).write(to: sagaFile)
        let participantsFile = folder.appendingPathComponent("participants.json")
        try Data(Self.participants.utf8).write(to: participantsFile)

        let server = try await ServeProcess(
            db: try await DatabaseKind.sqlite.newDatabase(), environment: [:], in: folder, sagas: sagas.path,
            extra: ["--participants", participantsFile.path])
        defer { server.kill9() }
        try await withHTTPClient { http in
            let api = APIClient(http: http, base: server.url)
            let (status, run) = try await api.call(.POST, "/v1/runs", ["saga": "gated", "input": [:]])
            #expect(status == 201)
            let id = try #require(run["id"]?.stringValue)
            // The saga's own "payments" has no breaker: the server-wide settings replace it, so it opens after one refusal.
            try await waitFor("the run to wait on the open circuit") {
                let events = try? await api.call(.GET, "/v1/runs/\(id)/events")
                return events?.json["events"]?.arrayValue?.contains { $0["kind"] == "participant_waiting" } == true
            }
            let shown = try await api.call(.GET, "/v1/runs/\(id)").json
            #expect(shown["steps"]?[0]?["attempts"] == 1)
            #expect(shown["status"] == "running")

            let statusText = try await SkaldProcess.run(["status", id, "--server", server.url], in: folder)
            #expect(statusText.status == 0)
            #expect(statusText.stdout.contains("waiting: charge — payments circuit open, next probe in "), "\(statusText.stdout)")

            let listed = try await SkaldProcess.run(["participants", "--server", server.url], in: folder)
            #expect(listed.status == 0)
            #expect(listed.stdout.contains("payments"))
            #expect(listed.stdout.contains("open, probe in "), "\(listed.stdout)")
            #expect(listed.stdout.contains("0/8"), "the bulkhead's limit: \(listed.stdout)")

            let metrics = try await api.text("/metrics").text
            #expect(metrics.contains(#"skald_participant_circuit_state{participant="payments"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"skald_participant_held_back_total{participant="payments"} 1"#))
        }

        let plan = try await SkaldProcess.run(["plan", sagaFile.path, "--participants", participantsFile.path], in: folder)
        #expect(plan.status == 0)
        #expect(plan.stdout.contains("payments (from --participants), called by charge: circuit breaker (opens at 100% failures"), "\(plan.stdout)")
        let planOwn = try await SkaldProcess.run(["plan", sagaFile.path], in: folder)
        #expect(planOwn.stdout.contains("payments (from the saga), called by charge: no limits"), "\(planOwn.stdout)")
    }

    @Test func aBadParticipantsFileStopsTheStartWithEveryProblemLocated() async throws {
        let folder = try temporaryFolder()
        let file = folder.appendingPathComponent("participants.json")
        try Data("{\"participants\": {\n  \"payments\": {\"bulkhead\": {\"maxInFlight\": 0},\n    \"rateLimit\": {\"burst\": 2}}\n}}".utf8).write(to: file)
        let result = try await SkaldProcess.run(
            ["serve", "--db", folder.appendingPathComponent("x.sqlite").path, "--port", "0", "--participants", file.path], in: folder)
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(file.path):2:"), "\(result.stderr)")
        #expect(result.stderr.contains("participants.payments.bulkhead.maxInFlight"))
        #expect(result.stderr.contains("\"perSecond\" is required"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("x.sqlite").path), "nothing is opened before the file is read")
    }

    @Test func runsWaitingOnAnOpenCircuitCarryOnAfterKill9WithTheCircuitClosed() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let sagas = try PatientSagas.folder(in: folder)
            let file = folder.appendingPathComponent("participants.json")
            // Matched by URL: the example checkout names no participant.
            try Data(
                #"""
                {"participants": {"payments": {"baseUrl": "\#(participants.urls[.payments]!)",
                  "circuitBreaker": {"windowCalls": 2, "minimumCalls": 2, "failureRate": 100, "openFor": "10s"}}}}
                """#.utf8
            ).write(to: file)
            let payments = participants[.payments]
            await payments.setFaults(Faults(failNext: 1_000_000))
            let db = try await DatabaseKind.sqlite.newDatabase()
            let first = try await ServeProcess(
                db: db, environment: participants.environment, in: folder, sagas: sagas, extra: ["--participants", file.path])
            let ids = try await withHTTPClient { http -> [String] in
                let api = APIClient(http: http, base: first.url)
                var started: [String] = []
                for order in 0..<2 {
                    let (status, run) = try await api.call(
                        .POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "order-\(order)")])
                    #expect(status == 201)
                    started.append(try #require(run["id"]?.stringValue))
                }
                let ids = started
                try await waitFor("both runs to wait on the open circuit") {
                    for id in ids {
                        let events = try? await api.call(.GET, "/v1/runs/\(id)/events")
                        guard events?.json["events"]?.arrayValue?.contains(where: { $0["kind"] == "participant_waiting" }) == true else { return false }
                    }
                    return true
                }
                return ids
            }
            // Killed while both wait: the waits are stored, nothing is in flight.
            first.kill9()
            _ = await first.waitForExit()
            await payments.setFaults(Faults())
            let before = await payments.requestCount
            let second = try await ServeProcess(
                db: db, environment: participants.environment, in: folder, sagas: sagas, extra: ["--participants", file.path])
            defer { second.kill9() }
            try await withHTTPClient { http in
                let api = APIClient(http: http, base: second.url)
                try await waitFor("both runs to complete after the restart") {
                    for id in ids {
                        guard (try? await api.call(.GET, "/v1/runs/\(id)"))?.json["status"] == "completed" else { return false }
                    }
                    return true
                }
                // The new process's circuit starts closed: at the stored probe time each run sends its charge once.
                #expect(await payments.requestCount - before == 2)
                let listed = try await api.call(.GET, "/v1/participants").json
                #expect(listed["participants"]?[0]?["circuit"] == "closed")
            }
        }
    }
}

import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import Testing
import SkaldTestSupport

/// `GET /metrics` of the real `skald serve`, read after real runs: the counts match what happened, no label holds a
/// run id, and the token guards it unless `--metrics-public`.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct MetricsTests {
    @Test(arguments: DatabaseKind.tested)
    func theCountsMatchTheRunsAndNoLabelHoldsARunID(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let token = "metrics-test-token"
            let server = try await ServeProcess(
                db: try await kind.newDatabase(), environment: participants.environment, in: folder, sagas: try PatientSagas.folder(in: folder),
                extra: ["--token", token])
            defer { server.kill9() }
            try await withHTTPClient { http in
                let api = APIClient(http: http, base: server.url, token: token)
                let anonymous = APIClient(http: http, base: server.url)
                #expect(try await anonymous.text("/metrics").status == 401)

                // Two completed runs, the first after two 503s from payments (two retries); one declined card
                // (compensated); one cancelled while inventory holds its reservation.
                await participants[.payments].setFaults(Faults(failNext: 2))
                var ids: [String] = []
                for order in ["m-1", "m-2"] {
                    ids.append(try await start(api, DemoSagas.checkoutInput(orderId: order)))
                    try await waitForEnd(api, ids.last!)
                }
                ids.append(try await start(api, DemoSagas.checkoutInput(orderId: "m-3", card: Participant.decliningCard)))
                try await waitForEnd(api, ids.last!)
                await participants[.inventory].setFaults(Faults(hold: true))
                let cancelled = try await start(api, DemoSagas.checkoutInput(orderId: "m-4"))
                ids.append(cancelled)
                await participants[.inventory].waitForHeld()
                #expect(try await api.call(.POST, "/v1/runs/\(cancelled)/cancel", ["reason": "test"]).status == 200)
                await participants[.inventory].setFaults(Faults())
                await participants[.inventory].releaseHeld()
                try await waitForEnd(api, cancelled)

                let (status, text) = try await api.text("/metrics")
                #expect(status == 200)
                let metrics = Metrics(text)
                #expect(metrics["skald_runs_started_total{saga=\"checkout\"}"] == 4)
                #expect(metrics["skald_runs_finished_total{saga=\"checkout\",outcome=\"completed\"}"] == 2)
                #expect(metrics["skald_runs_finished_total{saga=\"checkout\",outcome=\"compensated\"}"] == 1)
                #expect(metrics["skald_runs_finished_total{saga=\"checkout\",outcome=\"cancelled\"}"] == 1)
                #expect(metrics["skald_run_duration_seconds_count{saga=\"checkout\",outcome=\"completed\"}"] == 2)
                #expect(metrics["skald_runs{status=\"completed\"}"] == 2)
                #expect(metrics["skald_runs{status=\"compensated\"}"] == 2)
                #expect(metrics["skald_runs{status=\"running\"}"] == 0)
                let charge = "saga=\"checkout\",step=\"charge-card\",phase=\"forward\""
                #expect(metrics["skald_attempts_total{\(charge),outcome=\"retryable\"}"] == 2)
                #expect(metrics["skald_attempts_total{\(charge),outcome=\"success\"}"] == 2)
                #expect(metrics["skald_attempts_total{\(charge),outcome=\"failed\"}"] == 1)
                #expect(metrics["skald_retries_scheduled_total{\(charge)}"] == 2)
                #expect(metrics["skald_attempt_duration_seconds_count{\(charge)}"] == 5)
                let release = "saga=\"checkout\",step=\"reserve-stock\",phase=\"compensate\""
                #expect(metrics["skald_attempts_total{\(release),outcome=\"success\"}"] == 2)
                #expect(metrics["skald_attempts_in_flight"] == 0)
                #expect((metrics["skald_store_commit_duration_seconds_count"] ?? 0) > 0)
                #expect((metrics["skald_store_transitions_per_commit_sum"] ?? 0) >= 20)
                #expect((metrics["skald_database_size_bytes"] ?? 0) > 0)
                #expect((metrics["process_cpu_seconds_total"] ?? 0) > 0)
                #expect((metrics["process_resident_memory_bytes"] ?? 0) > 1_000_000)
                #expect((metrics["process_open_fds"] ?? 0) > 3)
                #expect(text.contains("# TYPE skald_attempts_total counter"))
                #expect(text.contains("# TYPE skald_run_duration_seconds histogram"))
                for id in ids { #expect(!text.contains(id), "a label holds run id \(id)") }
            }
        }
    }

    @Test func metricsPublicServesThemWithoutTheToken() async throws {
        let folder = try temporaryFolder()
        let server = try await ServeProcess(
            db: try await DatabaseKind.sqlite.newDatabase(), environment: [:], in: folder, extra: ["--token", "t0k", "--metrics-public"])
        defer { server.kill9() }
        try await withHTTPClient { http in
            let anonymous = APIClient(http: http, base: server.url)
            let (status, text) = try await anonymous.text("/metrics")
            #expect(status == 200)
            #expect(Metrics(text)["skald_runs{status=\"running\"}"] == 0)
            // The rest of the API still needs the token.
            #expect(try await anonymous.call(.GET, "/v1/runs").status == 401)
        }
    }

    func start(_ api: APIClient, _ input: JSONValue) async throws -> String {
        let (status, run) = try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": input])
        #expect(status == 201)
        return try #require(run["id"]?.stringValue)
    }

    func waitForEnd(_ api: APIClient, _ id: String) async throws {
        try await waitFor("run \(id) to end") {
            let status = (try? await api.call(.GET, "/v1/runs/\(id)"))?.json["status"]?.stringValue
            return status.flatMap(RunStatus.init(rawValue:))?.isTerminal == true
        }
    }
}

/// The samples of a Prometheus text exposition, by their name and labels as written.
struct Metrics {
    var samples: [String: Double] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
    }

    subscript(_ sample: String) -> Double? { samples[sample] }
}

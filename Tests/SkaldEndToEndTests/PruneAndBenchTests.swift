import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldSQLite
import Testing
import SkaldTestSupport

@Suite(.timeLimit(.minutes(10))) struct PruneCommandTests {
    @Test func pruneDeletesFinishedRunsAndKeepsTheOnesThatNeedAnOperator() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = folder.appendingPathComponent("skald.sqlite").path
            // Patient timeouts: on a busy machine a 1 s timeout turned the completed run into a compensated one.
            let checkoutFile = try PatientSagas.copy("checkout.json", in: folder)
            let completed = try await SkaldProcess.run(
                ["run", checkoutFile, "--input", checkoutInput(), "--db", db], environment: participants.environment, in: folder)
            #expect(completed.status == 0, "\(completed.stdout)\(completed.stderr)")
            await participants[.inventory].setFaults(Faults(failCompensations: true))
            let failed = try await SkaldProcess.run(
                ["run", checkoutFile, "--input", checkoutInput(card: Participant.decliningCard, orderId: "order-2"), "--db", db],
                environment: participants.environment, in: folder)
            #expect(failed.status == 4, "\(failed.stdout)\(failed.stderr)")

            let kept = try await SkaldProcess.run(["prune", "--older-than", "7d", "--db", db], in: folder)
            #expect(kept.status == 0, "\(kept.stderr)")
            #expect(kept.stdout.hasPrefix("pruned 0 finished runs that ended before "))

            let pruned = try await SkaldProcess.run(["prune", "--older-than", "1ms", "--db", db], in: folder)
            #expect(pruned.status == 0, "\(pruned.stderr)")
            #expect(pruned.stdout.hasPrefix("pruned 1 finished run that ended before "))
            let runs = try await SQLiteStore(path: db).listRuns(RunQuery()).runs
            #expect(runs.map(\.status) == [.compensationFailed])

            let bad = try await SkaldProcess.run(["prune", "--older-than", "soon", "--db", db], in: folder)
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("--older-than must be a duration such as 7d, 12h or 30m, not \"soon\""))
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct BenchCommandTests {
    /// The benchmark at a tiny size: every scenario runs against its participant process and is reported in the
    /// table and as a JSON line. (Figures are not checked: tests never assert timings.)
    @Test func everyScenarioIsReportedAsATableRowAndAJSONLine() async throws {
        let folder = try temporaryFolder()
        let result = try await SkaldProcess.run(["bench", "--runs", "20", "--in-flight", "20", "--outage-seconds", "1", "--outage-after-ms", "0"], in: folder)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("Skald benchmark: ") == true)
        #expect(lines.contains { $0.contains("synchronous=NORMAL") })
        let records = lines.filter { $0.hasPrefix("{") }.compactMap { try? JSONParser.parse($0) }
        let scenarios = records.compactMap { record -> String? in
            guard let name = record["scenario"]?.stringValue, let concurrency = record["concurrency"]?.intValue else { return nil }
            return "\(name)/\(concurrency)/\(record["durability"]?.stringValue ?? "")"
        }
        #expect(
            scenarios == [
                "happy/1/process", "bare/1/process", "happy/64/process", "bare/64/process", "happy/512/process", "bare/512/process",
                "compensate/64/process", "happy/64/full", "hold/20/process", "bare-hold/20/process", "recover/20/process", "retention/64/process",
                "outage/512/process", "outage-breaker/512/process",
            ])
        let happy = try #require(records.first { $0["scenario"] == "happy" && $0["concurrency"] == 64 })
        #expect(happy["runs"] == 20)
        #expect(happy["httpCalls"] == 60, "three calls per run")
        let compensate = try #require(records.first { $0["scenario"] == "compensate" })
        #expect(compensate["httpCalls"] == 100, "three forward calls and two compensations per run")
        let recover = try #require(records.first { $0["scenario"] == "recover" })
        #expect(recover["httpCalls"] == 80, "each of the 20 held first calls sent again after the kill, then two more each")
        let retention = try #require(records.first { $0["scenario"] == "retention" })
        #expect(retention["prunedPerRound"] == [20, 20, 20])
        #expect(lines.contains { $0.hasPrefix("bare") && $0.contains("skald/bare") })
        // The runs started into the outage all complete once the participant is back, breaker or not.
        for record in records where record["scenario"]?.stringValue?.hasPrefix("outage") == true {
            #expect(record["completed"] == 20 && record["lost"] == 0, "\(record.jsonText)")
            #expect((record["outageCalls"]?.intValue ?? 0) > 0, "the runs met the outage: \(record.jsonText)")
        }
    }
}

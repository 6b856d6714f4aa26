import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

/// `skald serve --log-format json`: every line on standard output is one JSON record, with the run's id, saga, step,
/// attempt and trace id where they apply.
@Suite(.timeLimit(.minutes(10))) struct LogTests {
    @Test func jsonLogsCarryTheRunSagaStepAttemptAndTrace() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(
                db: try await DatabaseKind.sqlite.newDatabase(), environment: participants.environment, in: folder,
                sagas: try PatientSagas.folder(in: folder), extra: ["--log-format", "json", "--log-level", "debug"])
            defer { server.kill9() }
            await participants[.payments].setFaults(Faults(failNext: 1))
            let started = try await SkaldProcess.run(
                ["start", "checkout", "--input", checkoutInput(orderId: "log-1"), "--watch"], environment: ["SKALD_SERVER": server.url], in: folder)
            #expect(started.status == 0, "\(started.stdout)\(started.stderr)")
            let runID = try #require(started.stdout.components(separatedBy: "started run ").last?.components(separatedBy: " ").first)
            server.terminate()
            #expect(await server.waitForExit() == 0)

            let lines = server.process.stdout.split(separator: "\n")
            var records: [JSONValue] = []
            for line in lines {
                let record = try #require(try? JSONParser.parse(String(line)), "not a JSON record: \(line)")
                #expect(record["timestamp"]?.stringValue?.hasSuffix("Z") == true)
                #expect(record["level"]?.stringValue != nil && record["message"]?.stringValue != nil && record["logger"]?.stringValue != nil)
                records.append(record)
            }
            #expect(records.contains { $0["message"]?.stringValue?.contains("listening on http://") == true })
            let ofRun = records.filter { $0["run_id"]?.stringValue == runID }
            let trace = try #require(ofRun.first { $0["event"] == "run_started" }?["trace_id"]?.stringValue)
            #expect(trace.count == 32)
            #expect(ofRun.allSatisfy { $0["saga"] == "checkout" && $0["trace_id"]?.stringValue == trace }, "\(ofRun)")
            let failed = try #require(ofRun.first { $0["event"] == "attempt_failed" })
            #expect(failed["step"] == "charge-card" && failed["attempt"] == "1" && failed["phase"] == "forward" && failed["level"] == "notice")
            let sent = ofRun.filter { $0["message"] == "sending attempt" }
            #expect(sent.count == 4, "reserve, charge twice, ship, at debug")
            #expect(sent.contains { $0["step"] == "charge-card" && $0["attempt"] == "2" && $0["level"] == "debug" })
            #expect(ofRun.contains { $0["event"] == "run_completed" && $0["level"] == "info" })
            #expect(records.last?["message"]?.stringValue?.hasPrefix("skald serve: stopped") == true)
        }
    }

    @Test func aBadLogFormatOrLevelIsRefused() async throws {
        let folder = try temporaryFolder()
        let format = try await SkaldProcess.run(["serve", "--db", folder.appendingPathComponent("s.sqlite").path, "--log-format", "xml"], in: folder)
        #expect(format.status == 64)
        #expect(format.stderr.contains("--log-format must be text or json, not \"xml\""))
        let level = try await SkaldProcess.run(["serve", "--db", folder.appendingPathComponent("s.sqlite").path, "--log-level", "loud"], in: folder)
        #expect(level.status == 64)
        #expect(level.stderr.contains("--log-level must be one of trace, debug, info"))
    }
}

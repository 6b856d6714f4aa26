import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

/// Steps that wait, with the real binary, real participants and both stores: `Sagas/refund.json` waits for a manager
/// (parked as a row), survives a `kill -9`, is approved or rejected from the CLI, then sleeps and pays out.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct WaitingStepsCLITests {
    /// Waits until the run's step `step` is in `status`, reading the API.
    func waitForStep(_ runID: String, _ step: String, _ status: String, _ env: [String: String], in folder: URL) async throws {
        try await waitFor("\(step) of \(runID) to be \(status)") {
            let shown = try await NewcomerTests.run(["status", runID, "--json"], env, in: folder)
            guard shown.status == 0, let json = try? JSONParser.parse(shown.stdout) else { return false }
            return json["steps"]?.arrayValue?.first { $0["name"] == .string(step) }?["status"] == .string(status)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aRefundWaitsForAManagerAcrossAKillAndIsApprovedOrRejectedFromTheCLI(on kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await kind.newDatabase()
            // Patient timeouts: on a busy machine the 2s calls before the approval could time out and turn the run back.
            let sagas = try PatientSagas.folder(in: folder)
            // Parked once its next move is over a second off: the 48h approval is, and so is the 2s pause.
            let extra = ["--park-after", "1s"]
            var server = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas, extra: extra)
            var env = ["SKALD_SERVER": server.url, "USER": "ana"]
            let input = "@" + packageRoot.appendingPathComponent("Sagas/inputs/refund.json").path

            func start() async throws -> String {
                let started = try await NewcomerTests.run(["start", "refund", "--input", input], env, in: folder)
                #expect(started.status == 0, "\(started.stdout)\(started.stderr)")
                return try #require(started.stdout.components(separatedBy: "started run ").last?.components(separatedBy: " ").first)
            }
            let approved = try await start()
            let rejected = try await start()
            try await waitForStep(approved, "approve-refund", "waiting", env, in: folder)
            try await waitForStep(rejected, "approve-refund", "waiting", env, in: folder)

            let status = try await NewcomerTests.run(["status", approved], env, in: folder)
            #expect(status.stdout.contains("approve-refund waiting for a person's decision since "), "\(status.stdout)")
            #expect(status.stdout.contains("times out in 47h59m") || status.stdout.contains("times out in 48h"), "\(status.stdout)")
            #expect(status.stdout.contains("asks: Refund 620 EUR for order order-1001 (arrived broken)?"), "\(status.stdout)")
            #expect(status.stdout.contains("skald approve \(approved) approve-refund --note TEXT"), "\(status.stdout)")
            let listed = try await NewcomerTests.run(["list", "--waiting"], env, in: folder)
            let rows = listed.stdout.split(separator: "\n").filter { $0.hasPrefix("01") }.map { String($0.prefix(26)) }
            #expect(rows == [approved, rejected], "oldest first: \(listed.stdout)")
            #expect(listed.stdout.contains("approve-refund waits for a person's decision"), "\(listed.stdout)")

            // Killed while both wait: nothing is lost, and the waits are rows the next server takes up.
            server.kill9()
            _ = await server.waitForExit()
            server = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas, extra: extra)
            env["SKALD_SERVER"] = server.url
            defer { server.kill9() }

            let notAnApproval = try await NewcomerTests.run(["approve", approved, "credit-card"], env, in: folder)
            #expect(notAnApproval.status != 0 && notAnApproval.stderr.contains("is not an approval"), "\(notAnApproval.stderr)")
            #expect(notAnApproval.stderr.contains("waiting for a decision: approve-refund"), "\(notAnApproval.stderr)")

            let yes = try await NewcomerTests.run(["approve", approved, "approve-refund", "--note", "receipt checked"], env, in: folder)
            #expect(yes.status == 0, "\(yes.stdout)\(yes.stderr)")
            #expect(yes.stdout.contains("approved approve-refund of run \(approved): approve-refund succeeded; the run goes on"), "\(yes.stdout)")
            let no = try await NewcomerTests.run(["reject", rejected, "approve-refund", "--note", "over the limit", "--by", "bo"], env, in: folder)
            #expect(no.status == 0, "\(no.stdout)\(no.stderr)")
            let again = try await NewcomerTests.run(["approve", rejected, "approve-refund"], env, in: folder)
            #expect(again.status != 0 && again.stderr.contains("was already decided by bo"), "\(again.stderr)")

            let watchedYes = try await NewcomerTests.run(["watch", approved], env, in: folder)
            #expect(watchedYes.status == 0, "completed: \(watchedYes.stdout)")
            let watchedNo = try await NewcomerTests.run(["watch", rejected], env, in: folder)
            #expect(watchedNo.status == 3, "compensated: \(watchedNo.stdout)")

            let history = try await NewcomerTests.run(["history", approved, "--json"], env, in: folder)
            let kinds = (try JSONParser.parse(history.stdout)["events"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue }
            for kind in ["wait_started", "step_approved", "sleep_ended", "run_completed"] {
                #expect(kinds.contains(kind), "\(kind) in \(kinds)")
            }
            let after = try await NewcomerTests.run(["status", approved], env, in: folder)
            let row = after.stdout.split(separator: "\n").first { $0.hasPrefix("approve-refund") }.map(String.init) ?? ""
            #expect(row.contains("approved by ana: receipt checked"), "\(after.stdout)")
            let rejectedStatus = try await NewcomerTests.run(["status", rejected], env, in: folder)
            #expect(rejectedStatus.stdout.contains("rejected by bo: over the limit"), "\(rejectedStatus.stdout)")

            // Paid once, picked up once; the rejected refund's pickup was cancelled and nothing was credited for it.
            let credits = await participants[.payments].ledger.filter { $0.action == "credit" }.count
            #expect(credits == 1)
            let cancels = await participants[.shipping].ledger.filter { $0.action == "cancel" }.count
            #expect(cancels == 1)
            let emptyList = try await NewcomerTests.run(["list", "--waiting"], env, in: folder)
            #expect(emptyList.stdout.contains("no runs waiting for a person"), "\(emptyList.stdout)")
        }
    }

    @Test func skaldRunRefusesASagaWithAnApprovalItCouldNotTake() async throws {
        let folder = try temporaryFolder()
        let result = try await SkaldProcess.run(
            ["run", packageRoot.appendingPathComponent("Sagas/refund.json").path, "--db", folder.appendingPathComponent("r.sqlite").path],
            in: folder)
        #expect(result.status == 2)
        #expect(result.stderr.contains("approve-refund waits for a person's approval, which skald run cannot take"), "\(result.stderr)")
        #expect(result.stderr.contains("skald serve --sagas"), "\(result.stderr)")
    }
}

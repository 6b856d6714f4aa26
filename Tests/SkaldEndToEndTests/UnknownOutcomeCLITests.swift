import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

/// The real binary, as an operator drives it: a step whose participant never answers in time is shown as an
/// unknown outcome and undone; a run the business settled by hand is abandoned without undoing anything.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct UnknownOutcomeCLITests {
    @Test(arguments: DatabaseKind.tested)
    func statusExplainsAnUnknownOutcomeAndAbandonStopsARun(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(
                db: try await kind.newDatabase(), environment: participants.environment, in: folder,
                extra: ["--allow-env", "INVENTORY_URL,PAYMENTS_URL,SHIPPING_URL"])
            // Stopped however the test ends, so no server outlives the test run.
            defer { server.kill9() }
            let env = ["SKALD_SERVER": server.url]
            // The example checkout, with a quick ship-order timeout; the other calls get a long one, so that a busy
            // machine (a CI run measured 661 ms for a reservation) does not time out the charge instead.
            let text = try String(contentsOf: packageRoot.appendingPathComponent("Sagas/checkout.json"), encoding: .utf8)
                .replacingOccurrences(of: #""timeout": "1s""#, with: #""timeout": "300ms""#)
                .replacingOccurrences(of: #""timeout": "2s""#, with: #""timeout": "30s""#)
                .replacingOccurrences(of: #""version": 1"#, with: #""version": 2"#)
            try text.write(to: folder.appendingPathComponent("quick.json"), atomically: true, encoding: .utf8)
            let defined = try await SkaldProcess.run(["define", folder.appendingPathComponent("quick.json").path], environment: env, in: folder)
            #expect(defined.status == 0, "\(defined.stdout)\(defined.stderr)")

            await participants[.shipping].setFaults(Faults(stall: true))
            let watched = try await SkaldProcess.run(["start", "checkout", "--input", checkoutInput(), "--watch"], environment: env, in: folder)
            #expect(watched.status == 3, "\(watched.stdout)\(watched.stderr)")
            #expect(watched.stdout.contains("its outcome is unknown (no answer before the timeout): it may have been applied, so it is undone in case it was"))
            #expect(watched.stdout.contains("ship-order (undo)"))
            let runID = try #require(watched.stdout.components(separatedBy: "started run ").last?.components(separatedBy: " ").first)
            let status = try await SkaldProcess.run(["status", runID], environment: env, in: folder)
            let shipLine = status.stdout.split(separator: "\n").first { $0.hasPrefix("ship-order") }
            #expect(shipLine?.contains("compensated") == true, "\(status.stdout)")
            #expect(shipLine?.contains("outcome unknown, undone in case it was applied") == true, "\(status.stdout)")
            await participants[.shipping].setFaults(Faults())
            await participants[.shipping].releaseHeld()

            // A run held in its last step is abandoned: nothing is undone, and the note is in its history.
            let refundsBefore = await participants[.payments].ledger.filter { $0.action == "refund" }.count
            await participants[.shipping].setFaults(Faults(hold: true))
            let started = try await SkaldProcess.run(["start", "checkout", "--input", checkoutInput(orderId: "order-2"), "--json"], environment: env, in: folder)
            let id = try #require(try JSONParser.parse(started.stdout)["id"]?.stringValue)
            await participants[.shipping].waitForHeld()
            let noNote = try await SkaldProcess.run(["abandon", id, "--note", " "], environment: env, in: folder)
            #expect(noNote.status == 64, "\(noNote.stderr)")
            let abandoned = try await SkaldProcess.run(["abandon", id, "--note", "shipped by hand", "--by", "ana"], environment: env, in: folder)
            #expect(abandoned.status == 0, "\(abandoned.stderr)")
            #expect(abandoned.stdout.contains("abandoned run \(id): nothing more is sent or undone"))
            await participants[.shipping].setFaults(Faults())
            await participants[.shipping].releaseHeld()
            let watch = try await SkaldProcess.run(["watch", id], environment: env, in: folder)
            #expect(watch.status == 6, "\(watch.stdout)\(watch.stderr)")
            let history = try await SkaldProcess.run(["history", id], environment: env, in: folder)
            #expect(history.stdout.contains("ana abandoned the run: shipped by hand"))
            #expect(await participants[.payments].ledger.filter { $0.action == "refund" }.count == refundsBefore, "nothing was undone")
        }
    }
}

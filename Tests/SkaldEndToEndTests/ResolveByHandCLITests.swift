import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

/// `skald resolve` on a stuck run, with the real binary and real participants: the operator did the failed step's
/// work by hand, records it (with the response later steps read), and the run goes on and completes.
@Suite(.timeLimit(.minutes(10))) struct ResolveByHandCLITests {
    /// The stuck checkout (charge is the pivot, ship-order answers 404) with a last step, `label`, that reads
    /// ship-order's tracking number.
    static func sagaWithALabel() throws -> String {
        let stuck = try JSONParser.parse(PatientSagas.patient(try NewcomerTests.stuckSaga()))
        guard case .object(var members) = stuck, case .array(var steps) = members["steps"] else {
            throw TimedOut(what: "the stuck checkout's shape")
        }
        members["name"] = "checkout-label"
        steps.append([
            "name": "label",
            "request": [
                "method": "POST", "url": "{{env.SHIPPING_URL}}/shipments",
                "body": ["address": "{{input.address}}", "tracking": "{{steps.ship-order.response.body.trackingNumber}}"],
            ],
        ])
        members["steps"] = .array(steps)
        return JSONValue.object(members).prettyText
    }

    @Test func aStuckStepDoneByHandIsResolvedAndTheRunGoesOnToComplete() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(
                db: folder.appendingPathComponent("r.sqlite").path, environment: participants.environment, in: folder,
                extra: ["--allow-env", "INVENTORY_URL,PAYMENTS_URL,SHIPPING_URL"])
            let env = ["SKALD_SERVER": server.url, "USER": "ana"]
            let sagaFile = folder.appendingPathComponent("checkout-label.json")
            try Self.sagaWithALabel().write(to: sagaFile, atomically: true, encoding: .utf8)
            let defined = try await NewcomerTests.run(["define", sagaFile.path], env, in: folder)
            #expect(defined.status == 0, "\(defined.stdout)\(defined.stderr)")
            let input = "@" + packageRoot.appendingPathComponent("Sagas/inputs/checkout.json").path

            let started = try await NewcomerTests.run(["start", "checkout-label", "--input", input, "--watch"], env, in: folder)
            #expect(started.status == 5, "\(started.stdout)\(started.stderr)")
            let runID = try #require(started.stdout.components(separatedBy: "started run ").last?.components(separatedBy: " ").first)
            // Every message on the stuck run names resolve as a way on, with the step.
            #expect(started.stdout.contains("skald resolve \(runID) --step ship-order"), "\(started.stdout)")
            let status = try await NewcomerTests.run(["status", runID], env, in: folder)
            #expect(status.stdout.contains("`skald resolve \(runID) --step ship-order --note TEXT`"), "\(status.stdout)")

            // A step that did not fail cannot be resolved; the refusal names the one that can.
            let wrongStep = try await NewcomerTests.run(["resolve", runID, "--step", "reserve-stock", "--note", "x"], env, in: folder)
            #expect(wrongStep.status != 0 && wrongStep.stderr.contains("the failed step of this stuck run: ship-order"), "\(wrongStep.stderr)")
            // label reads ship-order's response, so resolving without one is refused, naming label.
            let noResponse = try await NewcomerTests.run(["resolve", runID, "--step", "ship-order", "--note", "booked by phone"], env, in: folder)
            #expect(noResponse.status != 0 && noResponse.stderr.contains("label reads the response of ship-order"), "\(noResponse.stderr)")
            let badResponse = try await NewcomerTests.run(
                ["resolve", runID, "--step", "ship-order", "--note", "booked by phone", "--response", "{tracking"], env, in: folder)
            #expect(badResponse.status == 2 && badResponse.stderr.contains("--response:1:2: malformed JSON in --response"), "\(badResponse.stderr)")

            let resolved = try await NewcomerTests.run(
                ["resolve", runID, "--step", "ship-order", "--note", "booked by phone, ticket 981", "--response", #"{"trackingNumber": "BY-HAND-1"}"#],
                env, in: folder)
            #expect(resolved.status == 0, "\(resolved.stdout)\(resolved.stderr)")
            #expect(resolved.stdout.contains("resolved ship-order, done by hand; the run goes on from it in run \(runID)"), "\(resolved.stdout)")
            let watched = try await NewcomerTests.run(["watch", runID], env, in: folder)
            #expect(watched.status == 0, "\(watched.stdout)")

            // Shown as resolved, with who and what, in status and its JSON; label was sent with the tracking number given.
            let after = try await NewcomerTests.run(["status", runID], env, in: folder)
            let row = after.stdout.split(separator: "\n").first { $0.hasPrefix("ship-order") }.map(String.init) ?? ""
            #expect(row.contains("resolved") && row.contains("by hand (ana): booked by phone, ticket 981"), "\(after.stdout)")
            let json = try JSONParser.parse(try await NewcomerTests.run(["status", runID, "--json"], env, in: folder).stdout)
            #expect(json["status"] == "completed")
            let ship = json["steps"]?.arrayValue?.first { $0["name"] == "ship-order" }
            #expect(ship?["status"] == "resolved")
            #expect(ship?["resolution"]?["by"] == "ana" && ship?["resolution"]?["note"] == "booked by phone, ticket 981")
            #expect(ship?["response"]?["body"] == ["trackingNumber": "BY-HAND-1"])
            // label could only be sent with the tracking number to render: a step without a response has none.
            let label = json["steps"]?.arrayValue?.first { $0["name"] == "label" }
            #expect(label?["status"] == "succeeded")
            let history = try await NewcomerTests.run(["history", runID], env, in: folder)
            #expect(history.stdout.contains("ana resolved ship-order by hand: booked by phone, ticket 981"), "\(history.stdout)")
            #expect(history.stdout.contains("run completed: all 4 steps done, ship-order by hand"), "\(history.stdout)")
            server.terminate()
            _ = await server.waitForExit()
        }
    }
}

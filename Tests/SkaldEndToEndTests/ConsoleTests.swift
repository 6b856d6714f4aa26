import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

/// The web console in a real browser: headless Chromium (Debian's `chromium`) driven by `scripts/console-check.py`
/// through Playwright, against the real `skald serve`. It lists the runs started through the API, follows a running
/// run to its end without a reload after cancelling it from the page, draws the graph and the timeline, and writes a
/// screenshot of each page (their folder is printed). Without Chromium or Playwright the test fails: it does not
/// skip.
@Suite(.tags(.chromium, .python), .needs(.chromium, .python), .timeLimit(.minutes(10))) struct ConsoleTests {
    @Test func anOperatorFollowsAndCancelsARunInTheConsole() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let token = "console-token"
            // Payments is a server-wide participant with a circuit breaker, for the participants page.
            let participantsFile = folder.appendingPathComponent("participants.json")
            try Data(#"{"participants": {"payments": {"baseUrl": "\#(participants.urls[.payments]!)", "circuitBreaker": {}}}}"#.utf8)
                .write(to: participantsFile)
            let server = try await ServeProcess(
                db: try await DatabaseKind.sqlite.newDatabase(), environment: participants.environment, in: folder,
                sagas: try PatientSagas.folder(in: folder),
                extra: ["--token", token, "--participants", participantsFile.path, "--allow-env", "INVENTORY_URL,PAYMENTS_URL,SHIPPING_URL"])
            defer { server.kill9() }
            let (running, stuck, waiting, items) = try await withHTTPClient { http in
                let api = APIClient(http: http, base: server.url, token: token)
                // A run stuck after its pivot, for the page to resolve its failed step by hand.
                let defined = try await api.call(.POST, "/v1/definitions", try JSONParser.parse(PatientSagas.patient(try NewcomerTests.stuckSaga())))
                #expect(defined.status == 201, "\(defined.json)")
                let (_, stuckRun) = try await api.call(.POST, "/v1/runs", ["saga": "checkout-stuck", "input": DemoSagas.checkoutInput(orderId: "c-0")])
                let stuck = try #require(stuckRun["id"]?.stringValue)
                try await waitFor("run \(stuck) to be stuck") { (try? await api.call(.GET, "/v1/runs/\(stuck)"))?.json["status"] == "stuck" }
                // A refund waiting for a manager, for the page to list and approve.
                let refundInput = try JSONParser.parse(String(contentsOf: packageRoot.appendingPathComponent("Sagas/inputs/refund.json"), encoding: .utf8))
                let (_, refund) = try await api.call(.POST, "/v1/runs", ["saga": "refund", "input": refundInput])
                let waiting = try #require(refund["id"]?.stringValue)
                try await waitFor("run \(waiting) to wait for a person") {
                    (try? await api.call(.GET, "/v1/runs/\(waiting)"))?.json["steps"]?[1]?["status"] == "waiting"
                }
                for order in ["c-1", "c-2"] {
                    let (status, run) = try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: order)])
                    #expect(status == 201)
                    let id = try #require(run["id"]?.stringValue)
                    try await waitFor("run \(id) to complete") { (try? await api.call(.GET, "/v1/runs/\(id)"))?.json["status"] == "completed" }
                }
                // An order with an item out of stock: a fan-out turned back, for the page to show its items.
                let (_, order) = try await api.call(
                    .POST, "/v1/runs", ["saga": "order-items", "input": DemoSagas.orderItemsInput(orderId: "o-1", skus: ["SKU-APPLE", Participant.soldOutSKU, "SKU-PEAR"])])
                let items = try #require(order["id"]?.stringValue)
                try await waitFor("run \(items) to be compensated") { (try? await api.call(.GET, "/v1/runs/\(items)"))?.json["status"] == "compensated" }
                await participants[.inventory].setFaults(Faults(hold: true))
                let (_, run) = try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "c-3")])
                await participants[.inventory].waitForHeld()
                return (try #require(run["id"]?.stringValue), stuck, waiting, items)
            }

            let screenshots = folder.appendingPathComponent("console-screenshots")
            let check = try ChildProcess(
                executable: "/usr/bin/env", ["python3", "scripts/console-check.py", server.url + "/", token, running, screenshots.path, stuck, waiting, items],
                environment: ProcessInfo.processInfo.environment, directory: packageRoot, outputIn: folder)
            // The page cancelled the run; the held reservation is answered now, and the run is compensated.
            try await waitFor("the console to cancel the run", limit: .seconds(180)) {
                check.stdout.contains("cancel confirmed") || !check.isRunning
            }
            await participants[.inventory].setFaults(Faults())
            await participants[.inventory].releaseHeld()
            let exit = await check.waitForExit()
            print("console screenshots: \(screenshots.path)")
            #expect(exit.status == 0, "\(check.stdout)\(check.stderr)")
            #expect(check.stdout.contains("the run turned compensated on screen without a reload"), "\(check.stdout)")
            #expect(check.stdout.contains("the stuck step shows as resolved by hand and the run completed"), "\(check.stdout)")
            #expect(check.stdout.contains("the refund was approved on screen and completed"), "\(check.stdout)")
            for page in ["runs", "run-running", "run", "run-resolved", "runs-waiting", "run-waiting", "participants", "definitions"] {
                let size = (try? FileManager.default.attributesOfItem(atPath: screenshots.appendingPathComponent("\(page).png").path))?[.size] as? Int
                #expect((size ?? 0) > 10_000, "no screenshot of \(page)")
            }
            try await withHTTPClient { http in
                let run = try await APIClient(http: http, base: server.url, token: token).call(.GET, "/v1/runs/\(running)").json
                #expect(run["status"] == "compensated")
                let resolved = try await APIClient(http: http, base: server.url, token: token).call(.GET, "/v1/runs/\(stuck)").json
                let ship = resolved["steps"]?.arrayValue?.first { $0["name"] == "ship-order" }
                #expect(resolved["status"] == "completed" && ship?["status"] == "resolved", "\(resolved)")
                #expect(ship?["resolution"]?["by"] == "console-check" && ship?["resolution"]?["note"] == "shipped by the courier desk")
            }
            #expect(await participants[.inventory].ledger.map(\.action).suffix(2) == ["reserve", "release"])
        }
    }
}

import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import Testing
import SkaldTestSupport

/// Fan-out with the real binary and the demo's services on 127.0.0.1: an order with an item out of stock releases
/// the other two, each by its own key; `skald status` shows the items under their step; and a `skald` killed with
/// SIGKILL while the items' calls are in flight carries on after a restart with each item reserved once.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct FanOutCLITests {
    static func input(_ skus: [String]) -> String { DemoSagas.orderItemsInput(orderId: "order-7", skus: skus).jsonText }

    @Test(arguments: DatabaseKind.tested)
    func anItemOutOfStockReleasesTheOthersEachByItsOwnKeyAndStatusShowsTheItems(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await kind.newDatabase()
            let saga = try PatientSagas.copy("order-items.json", in: folder)
            let result = try await SkaldProcess.run(
                ["run", saga, "--input", Self.input(["SKU-APPLE", Participant.soldOutSKU, "SKU-PEAR"]), "--db", db],
                environment: participants.environment, in: folder)
            #expect(result.status == 3, "compensated: \(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("reserve-items[1] failed (HTTP 409"), "\(result.stdout)")
            let inventory = await participants[.inventory].ledger
            #expect(inventory.map(\.action).sorted() == ["release", "release", "reserve", "reserve"])
            let runID = try #require(result.stdout.split(separator: " ").dropFirst().first.map(String.init))
            let reserved = Set(inventory.filter { $0.action == "reserve" }.compactMap(\.idempotencyKey))
            #expect(reserved == ["\(runID):reserve-items[0]:forward", "\(runID):reserve-items[2]:forward"], "each item has its own key")
            #expect(await participants[.payments].ledger.isEmpty, "the card was never charged")

            let server = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: nil)
            defer { server.terminate() }
            let status = try await SkaldProcess.run(["status", runID, "--server", server.url], environment: [:], in: folder)
            #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
            #expect(status.stdout.contains("3 items: 2 compensated, 1 failed"), "\(status.stdout)")
            #expect(status.stdout.contains("  reserve-items[1]") && status.stdout.contains("out_of_stock"), "\(status.stdout)")
            let json = try JSONParser.parse(try await SkaldProcess.run(["status", runID, "--json", "--server", server.url], environment: [:], in: folder).stdout)
            #expect(json["steps"]?.arrayValue?.map { $0["name"] } == ["reserve-items", "charge-card"], "items are shown under their step")
            #expect(json["steps"]?[0]?["items"]?["byStatus"] == ["compensated": 2, "failed": 1])
            #expect(json["steps"]?[0]?["items"]?["steps"]?[2]?["idempotencyKey"] == .string("\(runID):reserve-items[2]:forward"))
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aSkaldKilledWhileTheItemsAreInFlightReservesEachItemOnce(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await kind.newDatabase()
            let inventory = participants[.inventory]
            await inventory.setFaults(Faults(hold: true))
            let first = try SkaldProcess(
                ["run", try PatientSagas.copy("order-items.json", in: folder), "--input", Self.input(["SKU-APPLE", "SKU-PEAR", "SKU-PLUM"]), "--db", db],
                environment: participants.environment, in: folder)
            // maxConcurrency is 4: all three items' calls are in flight at once.
            try await waitFor("three held reservations") { await inventory.heldCount == 3 }
            first.kill()
            #expect(await first.child.waitForExit().status == SIGKILL)
            // Inventory applies the three reservations, but nobody hears the answers.
            await inventory.setFaults(Faults())
            await inventory.releaseHeld()
            try await waitFor("the held reservations to be applied") { await inventory.ledger.count == 3 }

            let second = try await SkaldProcess.run(["resume", "--db", db], environment: participants.environment, in: folder)
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            #expect(second.stdout.components(separatedBy: "sending it again with the same idempotency key").count - 1 == 3, "\(second.stdout)")
            #expect(await inventory.ledger.map(\.action) == ["reserve", "reserve", "reserve"], "each item reserved once")
            #expect(await inventory.applicationsPerKey.values.allSatisfy { $0 == 1 })
            #expect(await participants[.payments].ledger.map(\.action) == ["charge"])
            try await withStore(db) { store in
                let runID = try #require(try await store.listRuns(RunQuery(limit: 1)).runs.first?.id)
                let attempts = try await store.attempts(runID: runID).filter { $0.key.stepName.hasPrefix("reserve-items[") }
                #expect(attempts.count == 3 && attempts.allSatisfy { $0.key.number == 1 && $0.sends == 2 && $0.succeeded == true },
                    "each item's one attempt was sent twice under its key")
                #expect(try await store.run(id: runID)?.state.status == .completed)
            }
        }
    }
}

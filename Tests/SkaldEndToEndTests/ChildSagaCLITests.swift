import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import Testing
import SkaldTestSupport

/// Sagas inside sagas with the real `skald serve` and the demo's services on 127.0.0.1: a checkout runs the shipping
/// saga as a child, the runs link to each other, reverting the checkout reverts its child; a server killed with
/// SIGKILL between the child's end and the parent's next step carries on with one child; a loop of sagas is refused.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct ChildSagaCLITests {
    static let parcel = """
        { "name": "ship-parcel", "version": 1, "defaults": { "timeout": "5m" }, "steps": [
            { "name": "ship", "request": { "method": "POST", "url": "{{env.SHIPPING_URL}}/shipments",
                "body": { "orderId": "{{input.orderId}}", "address": "{{input.address}}" } },
              "compensation": { "method": "DELETE", "url": "{{env.SHIPPING_URL}}/shipments/by-key/{{steps.ship.idempotencyKey}}" } } ],
          "output": { "shipment": "{{steps.ship.response.body.id}}" } }
        """
    static let checkout = """
        { "name": "checkout-parcel", "version": 1, "defaults": { "timeout": "5m" }, "steps": [
            { "name": "charge", "request": { "method": "POST", "url": "{{env.PAYMENTS_URL}}/charges",
                "body": { "orderId": "{{input.orderId}}", "amount": 10, "currency": "EUR", "card": "4242424242424242" } },
              "compensation": { "method": "POST", "url": "{{env.PAYMENTS_URL}}/charges/by-key/{{steps.charge.idempotencyKey}}/refund" } },
            { "name": "deliver", "saga": { "name": "ship-parcel", "input": { "orderId": "{{input.orderId}}", "address": { "city": "Lisbon" } } } },
            { "name": "book", "request": { "method": "POST", "url": "{{env.HOTELS_URL}}/bookings",
                "body": { "tripId": "{{steps.deliver.output.shipment}}" } },
              "compensation": { "method": "DELETE", "url": "{{env.HOTELS_URL}}/bookings/by-key/{{steps.book.idempotencyKey}}" } } ] }
        """

    func sagas(in folder: URL) throws -> String {
        let sagas = folder.appendingPathComponent("sagas")
        try FileManager.default.createDirectory(at: sagas, withIntermediateDirectories: true)
        try Self.parcel.write(to: sagas.appendingPathComponent("ship-parcel.json"), atomically: true, encoding: .utf8)
        try Self.checkout.write(to: sagas.appendingPathComponent("checkout-parcel.json"), atomically: true, encoding: .utf8)
        return sagas.path
    }

    @Test(arguments: DatabaseKind.tested)
    func aChildRunIsLinkedAndRevertingItsParentRevertsIt(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(
                db: try await kind.newDatabase(), environment: participants.environment, in: folder, sagas: try sagas(in: folder))
            defer { server.terminate() }
            let env = ["SKALD_SERVER": server.url]
            let started = try await SkaldProcess.run(
                ["start", "checkout-parcel", "--input", #"{"orderId": "o-1"}"#, "--watch"], environment: env, in: folder)
            #expect(started.status == 0, "\(started.stdout)\(started.stderr)")
            let parentID = try #require(started.stdout.split(separator: " ").dropFirst(2).first.map(String.init))
            let json = try JSONParser.parse(try await SkaldProcess.run(["status", parentID, "--json"], environment: env, in: folder).stdout)
            let childID = try #require(json["steps"]?[1]?["wait"]?["child"]?.stringValue, "\(json)")
            let status = try await SkaldProcess.run(["status", parentID], environment: env, in: folder)
            #expect(status.stdout.contains("child run \(childID)"), "\(status.stdout)")
            let child = try await SkaldProcess.run(["status", childID], environment: env, in: folder)
            #expect(child.stdout.contains("child of run \(parentID), step deliver"), "\(child.stdout)")
            #expect(await participants[.hotels].ledger.count == 1, "book read the child's output")

            let reverted = try await SkaldProcess.run(["revert", parentID, "--note", "order returned"], environment: env, in: folder)
            #expect(reverted.status == 0, "\(reverted.stdout)\(reverted.stderr)")
            let watched = try await SkaldProcess.run(["watch", parentID], environment: env, in: folder)
            #expect(watched.stdout.contains("compensated"), "\(watched.stdout)")
            try await waitFor("the child to be reverted") {
                (try? JSONParser.parse(try await SkaldProcess.run(["status", childID, "--json"], environment: env, in: folder).stdout))?["status"] == "compensated"
            }
            #expect(await participants[.shipping].ledger.map(\.action) == ["ship", "cancel"])
            #expect(await participants[.payments].ledger.map(\.action) == ["charge", "refund"])
            // A saga with a pivot cannot be reverted; nor can a run that is not completed.
            let again = try await SkaldProcess.run(["revert", parentID, "--note", "twice"], environment: env, in: folder)
            #expect(again.status != 0 && again.stderr.contains("only a completed run can be reverted"), "\(again.stderr)")
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aServerKilledBetweenTheChildsEndAndTheParentsNextStepStartsNoSecondChild(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await kind.newDatabase()
            let sagas = try sagas(in: folder)
            await participants[.hotels].setFaults(Faults(hold: true))
            let first = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            let env = ["SKALD_SERVER": first.url]
            let started = try await SkaldProcess.run(["start", "checkout-parcel", "--input", #"{"orderId": "o-2"}"#], environment: env, in: folder)
            #expect(started.status == 0, "\(started.stderr)")
            // The child ended and the parent's next step is in flight, held by hotels.
            try await waitFor("the booking after the child to be held") { await participants[.hotels].heldCount == 1 }
            first.kill9()
            _ = await first.waitForExit()
            await participants[.hotels].setFaults(Faults())
            await participants[.hotels].releaseHeld()

            let second = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            defer { second.terminate() }
            let parentID = try #require(started.stdout.split(separator: " ").dropFirst(2).first.map(String.init))
            let watched = try await SkaldProcess.run(["watch", parentID], environment: ["SKALD_SERVER": second.url], in: folder)
            #expect(watched.stdout.contains("completed"), "\(watched.stdout)")
            try await withStore(db) { store in
                let children = try await store.listRuns(RunQuery(saga: "ship-parcel")).runs
                #expect(children.count == 1, "one child, however often its step ran")
                #expect(children.first?.idempotencyKey == "\(parentID):deliver:child")
            }
            #expect(await participants[.shipping].ledger.map(\.action) == ["ship"])
            #expect(await participants[.hotels].applicationsPerKey.values.allSatisfy { $0 == 1 })
        }
    }

    @Test func sagasThatStartEachOtherInALoopAreRefused() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(
                db: folder.appendingPathComponent("l.sqlite").path, environment: participants.environment, in: folder, sagas: try sagas(in: folder))
            defer { server.terminate() }
            // ship-parcel v2 would run checkout-parcel, which runs ship-parcel (the latest: v2).
            let loop = #"{ "name": "ship-parcel", "version": 2, "steps": [ { "name": "again", "saga": { "name": "checkout-parcel" } } ] }"#
            let file = folder.appendingPathComponent("loop.json")
            try loop.write(to: file, atomically: true, encoding: .utf8)
            let refused = try await SkaldProcess.run(["define", file.path], environment: ["SKALD_SERVER": server.url], in: folder)
            #expect(refused.status != 0, "\(refused.stdout)")
            #expect(refused.stderr.contains("the sagas start each other in a loop: ship-parcel starts checkout-parcel starts ship-parcel"), "\(refused.stderr)")
            // A saga that runs itself is refused by validate, with the field.
            let selfLoop = #"{ "name": "again", "version": 1, "steps": [ { "name": "a", "saga": { "name": "again" } } ] }"#
            let selfFile = folder.appendingPathComponent("self.json")
            try selfLoop.write(to: selfFile, atomically: true, encoding: .utf8)
            let validated = try await SkaldProcess.run(["validate", selfFile.path], in: folder)
            #expect(validated.status == 1 && validated.stderr.contains("steps[0].saga.name") && validated.stderr.contains("cannot run itself"), "\(validated.stderr)")
        }
    }
}

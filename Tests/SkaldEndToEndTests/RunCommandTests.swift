import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldSQLite
import Testing
import SkaldTestSupport

let checkoutFile = packageRoot.appendingPathComponent("Sagas/checkout.json").path

func checkoutInput(card: String = "4242424242424242", orderId: String = "order-1") -> String {
    DemoSagas.checkoutInput(orderId: orderId, card: card).jsonText
}

/// `skald run` as a user runs it: the real binary against participants on 127.0.0.1.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct RunCommandTests {
    @Test(arguments: DatabaseKind.tested)
    func aCompletedRunExitsZeroAndShowsEachAttempt(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await kind.newDatabase()
            // Patient timeouts: the test expects every step to succeed at its first attempt, even on a busy machine.
            let result = try await SkaldProcess.run(
                ["run", try PatientSagas.copy("checkout.json", in: folder), "--input", checkoutInput(), "--db", db],
                environment: participants.environment, in: folder)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            for step in ["reserve-stock", "charge-card", "ship-order"] {
                #expect(result.stdout.contains { _ in true } && result.stdout.split(separator: "\n").contains { $0.contains(step) && $0.contains("#1/4") && $0.contains("ok") && $0.contains("HTTP 201") })
            }
            #expect(result.stdout.contains("completed in"))
            let unfinished = try await withStore(db) { try await $0.unfinishedRuns() }
            #expect(unfinished.isEmpty)
            #expect(try await listRuns(db, RunQuery()).map(\.status) == [.completed])
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aDeclinedCardCompensatesAndExitsThree(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let result = try await SkaldProcess.run(
                ["run", try PatientSagas.copy("checkout.json", in: folder), "--input", checkoutInput(card: Participant.decliningCard), "--db", try await kind.newDatabase()],
                environment: participants.environment, in: folder)
            #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("HTTP 402 Payment Required"))
            #expect(result.stdout.contains("not retryable"))
            #expect(result.stdout.contains("reserve-stock (undo)"))
            #expect(result.stdout.contains("compensated in"))
            #expect(await participants[.inventory].ledger.map(\.action) == ["reserve", "release"])
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func anUnreachableParticipantIsRetriedThenCompensated(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            var environment = participants.environment
            environment["PAYMENTS_URL"] = "http://127.0.0.1:1"
            // Patient timeouts: on a busy machine a 2s timeout of the reservation would change the story.
            let result = try await SkaldProcess.run(
                ["run", try PatientSagas.copy("checkout.json", in: folder), "--input", checkoutInput(), "--db", try await kind.newDatabase()],
                environment: environment, in: folder)
            #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
            let chargeLines = result.stdout.split(separator: "\n").filter { $0.contains("charge-card ") && $0.contains("#") }
            #expect(chargeLines.count == 4)
            // The URL is shown with its environment reference, not the value.
            #expect(chargeLines.first?.contains("connection refused by {{env.PAYMENTS_URL}}/charges") == true, "\(chargeLines)")
            #expect(chargeLines.first?.contains("retry in") == true)
            #expect(chargeLines.last?.contains("giving up") == true)
            #expect(await participants[.inventory].ledger.map(\.action) == ["reserve", "release"])
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aFailingCompensationEndsInCompensationFailedAndExitsFour(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            await participants[.shipping].setFaults(Faults(reject: true))
            await participants[.payments].setFaults(Faults(failCompensations: true))
            let folder = try temporaryFolder()
            let result = try await SkaldProcess.run(
                ["run", try PatientSagas.copy("checkout.json", in: folder), "--input", checkoutInput(), "--db", try await kind.newDatabase()],
                environment: participants.environment, in: folder)
            #expect(result.status == 4, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("compensation_failed"))
            #expect(result.stdout.contains("the compensation of charge-card failed"))
            #expect(result.stdout.contains("still to undo: reserve-stock"))
            // The reservation is not released before the refund: order matters, a person decides.
            #expect(await participants[.inventory].ledger.map(\.action) == ["reserve"])
        }
    }

    @Test func anInputThatLacksAFieldIsRefusedWithExitTwoAndNothingStored() async throws {
        let folder = try temporaryFolder()
        let db = folder.appendingPathComponent("s.sqlite").path
        let result = try await SkaldProcess.run(
            ["run", checkoutFile, "--input", #"{"orderId": "o1", "sku": "S", "quantity": 0}"#, "--db", db],
            environment: ["INVENTORY_URL": "http://127.0.0.1:1", "PAYMENTS_URL": "http://127.0.0.1:1", "SHIPPING_URL": "http://127.0.0.1:1"],
            in: folder)
        #expect(result.status == 2)
        #expect(result.stderr.contains("input lacks the required field \"card\""))
        #expect(result.stderr.contains("input.quantity must be at least 1"))
        #expect(!result.stderr.contains("input has no field"), "the schema's explanation is enough")
        // Nothing stored: not even the database file was created.
        #expect(!FileManager.default.fileExists(atPath: db))
    }

    @Test func malformedInputAndMissingEnvironmentAreNamed() async throws {
        let folder = try temporaryFolder()
        let malformed = try await SkaldProcess.run(["run", checkoutFile, "--input", "{\"orderId\": }", "--db", folder.appendingPathComponent("s.sqlite").path], in: folder)
        #expect(malformed.status == 2)
        #expect(malformed.stderr.contains("--input:1:13: malformed JSON input"))
        let inputFile = packageRoot.appendingPathComponent("Sagas/inputs/checkout.json").path
        let noEnvironment = try await SkaldProcess.run(
            ["run", checkoutFile, "--input", "@\(inputFile)", "--db", folder.appendingPathComponent("s.sqlite").path],
            environment: ["INVENTORY_URL": "", "PAYMENTS_URL": "http://127.0.0.1:1"], in: folder)
        #expect(noEnvironment.status == 2)
        #expect(noEnvironment.stderr.contains("the environment variable SHIPPING_URL is not set"))
    }

    @Test func anUnusableDatabaseIsNamedAndExitsOne() async throws {
        let folder = try temporaryFolder()
        let inputFile = packageRoot.appendingPathComponent("Sagas/inputs/checkout.json").path
        let environment = ["INVENTORY_URL": "http://127.0.0.1:1", "PAYMENTS_URL": "http://127.0.0.1:1", "SHIPPING_URL": "http://127.0.0.1:1"]
        let missing = try await SkaldProcess.run(
            ["run", checkoutFile, "--input", "@\(inputFile)", "--db", "/proc/no/such/dir/s.sqlite"], environment: environment, in: folder)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cannot open the database at /proc/no/such/dir/s.sqlite"))
        #expect(missing.stderr.contains("Pass --db with a writable path"))

        let viaEnvironment = try await SkaldProcess.run(
            ["resume"], environment: ["SKALD_DB": "/proc/no/such/dir/env.sqlite"], in: folder)
        #expect(viaEnvironment.status == 1)
        #expect(viaEnvironment.stderr.contains("/proc/no/such/dir/env.sqlite"))
    }

    @Test func aDefinitionWithProblemsIsRefusedWithExitTwo() async throws {
        let folder = try temporaryFolder()
        let file = folder.appendingPathComponent("bad.json")
        try Data(#"{"name": "x", "version": 1, "steps": []}"#.utf8).write(to: file)
        let result = try await SkaldProcess.run(["run", file.path, "--db", folder.appendingPathComponent("s.sqlite").path], in: folder)
        #expect(result.status == 2)
        #expect(result.stderr.contains("steps: \"steps\" is empty"))
    }
}

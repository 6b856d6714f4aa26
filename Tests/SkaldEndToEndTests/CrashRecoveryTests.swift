import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldSQLite
import Testing
import SkaldTestSupport

/// Kills the real `skald` with SIGKILL while a participant holds its request, restarts it, and checks that the
/// run finishes and that every forward action was applied exactly once.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct CrashRecoveryTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var holder: Participant.Kind
        var card = "4242424242424242"
        var expectedExit: Int32
        var expectedLedger: [Participant.Kind: [String]]
        var testDescription: String { name }
    }

    static let cases = [
        Case(
            name: "killed during the first step", holder: .inventory, expectedExit: 0,
            expectedLedger: [.inventory: ["reserve"], .payments: ["charge"], .shipping: ["ship"]]),
        Case(
            name: "killed during the last step", holder: .shipping, expectedExit: 0,
            expectedLedger: [.inventory: ["reserve"], .payments: ["charge"], .shipping: ["ship"]]),
        Case(
            name: "killed during a compensation", holder: .inventory, card: Participant.decliningCard, expectedExit: 3,
            expectedLedger: [.inventory: ["reserve", "release"], .payments: [], .shipping: []]),
    ]

    @Test(arguments: cases, DatabaseKind.tested)
    func aKilledRunCarriesOnAfterRestartWithEachActionAppliedOnce(_ scenario: Case, kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await kind.newDatabase()
            let holder = participants[scenario.holder]
            // For the compensation case, hold only after the forward reservation went through.
            let holdsCompensation = scenario.card == Participant.decliningCard
            if !holdsCompensation { await holder.setFaults(Faults(hold: true)) }

            let first = try SkaldProcess(
                ["run", try PatientSagas.copy("checkout.json", in: folder), "--input", checkoutInput(card: scenario.card), "--db", db],
                environment: participants.environment, in: folder)
            if holdsCompensation {
                try await waitFor("the reservation") { await holder.ledger.count == 1 }
                await holder.setFaults(Faults(hold: true))
                try await waitFor("the release to be held") { await holder.heldCount == 1 }
            } else {
                try await waitFor("a held request") { await holder.heldCount == 1 }
            }
            first.kill()
            let killed = await first.child.waitForExit()
            #expect(killed.signalled)
            #expect(killed.status == SIGKILL)

            // The participant finishes the request it was holding, but nobody hears the answer.
            await holder.setFaults(Faults())
            await holder.releaseHeld()

            let unfinished = try await withStore(db) { try await $0.unfinishedRuns() }
            #expect(unfinished.count == 1)
            let runID = try #require(unfinished.first?.id)

            let createdAt = try #require(unfinished.first?.createdAt)
            let resumedAt = Date()
            let second = try await SkaldProcess.run(["resume", "--db", db], environment: participants.environment, in: folder)
            #expect(second.status == scenario.expectedExit, "\(second.stdout)\(second.stderr)")
            // The summary counts from the run's start, which was before this resume began (to the tenth it prints).
            let summary = try #require(second.stdout.split(separator: "\n").last { $0.hasPrefix("run \(runID) ") })
            let took = try #require(summary.components(separatedBy: " in ").dropFirst().first?.components(separatedBy: ":").first)
            let elapsed = try #require(DurationText.parse(took), "\(summary)")
            #expect(elapsed.seconds >= resumedAt.timeIntervalSince(createdAt) - 0.1, "\(summary)")
            #expect(second.stdout.contains("sending it again with the same idempotency key"))

            for kind in Participant.Kind.allCases {
                let participant = participants[kind]
                #expect(await participant.ledger.map(\.action) == scenario.expectedLedger[kind] ?? [], "\(kind)")
                let perKey = await participant.applicationsPerKey
                #expect(perKey.values.allSatisfy { $0 == 1 }, "\(kind) applied a key twice: \(perKey)")
            }
            // The held attempt was sent twice under one key, and counted as one attempt.
            try await withStore(db) { store in
                let attempts = try await store.attempts(runID: runID)
                #expect(attempts.contains { $0.sends == 2 && $0.key.number == 1 && $0.succeeded == true })
                #expect(try await store.run(id: runID)?.state.status.isTerminal == true)
                #expect(try await store.unfinishedRuns().isEmpty)
            }
        }
    }
}

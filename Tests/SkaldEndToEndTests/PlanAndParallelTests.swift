import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

let tripFile = packageRoot.appendingPathComponent("Sagas/trip.json").path

@Suite(.timeLimit(.minutes(10))) struct PlanCommandTests {
    @Test func aFailureAfterThePivotKeepsWhatIsInFlightBesideIt() async throws {
        let result = try await SkaldProcess.run(["plan", "Sagas/trip.json", "--fail-at", "confirm-hotel"], in: try temporaryFolder())
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("in flight beside it, allowed to finish, and kept (past the pivot nothing is undone): confirm-flight"))
        #expect(!result.stdout.contains("then undone"), "a step after the pivot is never undone")
        #expect(result.stdout.contains("the run is stuck at confirm-hotel"))
    }

    @Test func planPrintsTheExactWavesDelaysAndCompensationOrder() async throws {
        let result = try await SkaldProcess.run(["plan", "Sagas/trip.json", "--fail-at", "car"], in: try temporaryFolder())
        #expect(result.status == 0, "\(result.stderr)")
        let expected = """
            Plan for trip v1 (Sagas/trip.json); nothing is sent.

            Waves (the steps of a wave run at the same time):
              1. hotel, flight, car
              2. payment (pivot)
              3. confirm-hotel, confirm-flight

            Steps (delays are the waits before attempts 2, 3, …; with full jitter anywhere from 0):
              hotel           timeout 2s, 3 attempts, delays 0–200ms, 0–400ms, worst case 6.6s; starts at once
                              undo: timeout 2s, 5 attempts, delays 0–200ms, 0–400ms, 0–800ms, 0–1.6s, worst case 13s
              flight          timeout 2s, 3 attempts, delays 0–200ms, 0–400ms, worst case 6.6s; starts at once
                              undo: timeout 2s, 5 attempts, delays 0–200ms, 0–400ms, 0–800ms, 0–1.6s, worst case 13s
              car             timeout 2s, 3 attempts, delays 0–200ms, 0–400ms, no retry after 5s, worst case 6.6s; starts at once
                              undo: timeout 2s, 5 attempts, delays 0–200ms, 0–400ms, 0–800ms, 0–1.6s, worst case 13s
              payment         timeout 2s, 3 attempts, delays 0–200ms, 0–400ms, worst case 6.6s; after hotel, flight, car
              confirm-hotel   timeout 2s, 3 attempts, delays 0–200ms, 0–400ms, worst case 6.6s; after payment
              confirm-flight  timeout 2s, 3 attempts, delays 0–200ms, 0–400ms, worst case 6.6s; after payment

            Worst case going forward: 19.8s along hotel → payment → confirm-hotel (the saga deadline is 2m)

            If car fails for good:
              in flight beside it, allowed to finish and then undone: hotel, flight
              1. undo hotel, flight (at the same time)
              outcome: compensated
              if its outcome is unknown (no answer before the timeout), it may have been applied, so it is undone too: hotel + flight + car; outcome: compensated

            """
        #expect(result.stdout == expected)
    }

    @Test func planAsJSONCoversEveryStepAndAFailureAfterThePivotIsStuck() async throws {
        let result = try await SkaldProcess.run(["plan", "Sagas/trip.json", "--json"], in: try temporaryFolder())
        let plan = try JSONParser.parse(result.stdout)
        #expect(plan["waves"] == [["hotel", "flight", "car"], ["payment"], ["confirm-hotel", "confirm-flight"]])
        let failures = plan["failures"]?.arrayValue ?? []
        #expect(failures.count == 6)
        let confirm = failures.first { $0["step"] == "confirm-hotel" }
        #expect(confirm?["outcome"] == "stuck")
        #expect(confirm?["compensationWaves"] == [])
        let payment = failures.first { $0["step"] == "payment" }
        #expect(payment?["compensationWaves"] == [["hotel", "flight", "car"]])
        let unknown = try await SkaldProcess.run(["plan", "Sagas/trip.json", "--fail-at", "boat"], in: try temporaryFolder())
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("no such step; its steps are hotel, flight, car"))
    }

    @Test func graphPrintsAMermaidFlowchart() async throws {
        let result = try await SkaldProcess.run(["graph", "Sagas/trip.json"], in: try temporaryFolder())
        #expect(result.stdout.hasPrefix("flowchart TD\n"))
        #expect(result.stdout.contains("s3{{\"payment (pivot)\"}}"))
        #expect(result.stdout.contains("  s2 --> s3\n"))
        #expect(result.stdout.contains("  s0 -. compensated by .-> u0\n"))
    }
}

@Suite(.timeLimit(.minutes(10))) struct ParallelExecutionTests {
    /// Hotels holds its booking: flight and car must still be booked meanwhile (they run in parallel). Cars refuses,
    /// so the saga turns back: the flight is cancelled at once, while the hotel booking in flight is allowed to finish
    /// and is cancelled after it.
    @Test(arguments: DatabaseKind.tested)
    func stepsRunInParallelAndCompensationWaitsForTheAttemptInFlight(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            await participants[.hotels].setFaults(Faults(hold: true))
            await participants[.cars].setFaults(Faults(reject: true))
            // The car's retries end at its maxAttempts (3), not at its maxElapsed (5s), which a loaded machine can reach
            // after the first attempt.
            let trip = try PatientSagas.copy("trip.json", in: folder)
            try String(contentsOfFile: trip, encoding: .utf8).replacingOccurrences(of: #""maxElapsed": "5s""#, with: #""maxElapsed": "5m""#)
                .write(toFile: trip, atomically: true, encoding: .utf8)
            let run = try SkaldProcess(
                ["run", trip, "--input", DemoSagas.tripInput(tripId: "t-1").jsonText, "--db", try await kind.newDatabase()],
                environment: participants.environment, in: folder)
            try await waitFor("the hotel booking to be held") { await participants[.hotels].heldCount == 1 }
            try await waitFor("the flight to be booked while the hotel is held") { await participants[.flights].ledger.count >= 1 }
            try await waitFor("the flight to be cancelled while the hotel is still held") {
                await participants[.flights].ledger.map(\.action) == ["book", "cancel"]
            }
            // The participant applies the cancel before Skald reads the answer: wait until the outcome is stored and
            // printed, so releasing the hotel cannot overtake it.
            try await waitFor("the flight cancel outcome to be printed") {
                run.stdout.split(separator: "\n").contains { $0.contains("flight (undo)") && $0.contains("ok") }
            }
            #expect(await participants[.hotels].ledger.map(\.action) == ["book"])
            // Retried (retryOn 409) until maxAttempts: as many requests as the attempts the run printed, and more than one.
            let carAttempts = run.stdout.split(separator: "\n").filter { $0.contains("car ") && $0.contains("HTTP 409") && !$0.contains("undo") }.count
            #expect(carAttempts >= 2, "car was retried (retryOn 409): \(run.stdout)")
            #expect(await participants[.cars].requestCount == carAttempts, "one request per attempt printed")
            await participants[.hotels].setFaults(Faults())
            await participants[.hotels].releaseHeld()
            let status = await run.waitForExit()
            #expect(status == 3, "\(run.stdout)\(run.stderr)")
            #expect(await participants[.hotels].ledger.map(\.action) == ["book", "cancel"])
            #expect(await participants[.payments].ledger.isEmpty)
            let lines = run.stdout.split(separator: "\n")
            let flightUndo = try #require(lines.firstIndex { $0.contains("flight (undo)") })
            let hotelDone = try #require(lines.firstIndex { $0.contains("hotel ") && $0.contains("ok") && !$0.contains("undo") })
            let hotelUndo = try #require(lines.firstIndex { $0.contains("hotel (undo)") })
            #expect(flightUndo < hotelDone && hotelDone < hotelUndo)
        }
    }
}

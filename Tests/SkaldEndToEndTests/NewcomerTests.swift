import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

/// What a newcomer tripped over, with the real binary: a watch that never ended on a stuck run, messages that named
/// a next step that does not work in that state, a reused idempotency key, and `--json` errors in plain text.
@Suite(.timeLimit(.minutes(10))) struct NewcomerTests {
    /// The checkout with its charge as the pivot and a last step that answers 404: every run ends stuck.
    static func stuckSaga() throws -> String {
        var saga = try JSONParser.parse(String(contentsOf: packageRoot.appendingPathComponent("Sagas/checkout.json"), encoding: .utf8))
        guard case .object(var members) = saga, case .array(var steps) = members["steps"],
            case .object(var charge) = steps[1], case .object(var ship) = steps[2], case .object(var request) = ship["request"]
        else { throw TimedOut(what: "the checkout's shape") }
        members["name"] = "checkout-stuck"
        charge["pivot"] = true
        charge.removeValue(forKey: "compensation")
        request["url"] = "{{env.SHIPPING_URL}}/no-such-route"
        ship["request"] = .object(request)
        ship.removeValue(forKey: "compensation")
        steps[1] = .object(charge)
        steps[2] = .object(ship)
        members["steps"] = .array(steps)
        saga = .object(members)
        return saga.prettyText
    }

    /// Runs the binary to its end, but at most `limit`: a command that never ends is killed and reported as such.
    static func run(_ arguments: [String], _ environment: [String: String], in folder: URL, limit: Duration = .seconds(60)) async throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let process = try SkaldProcess(arguments, environment: environment, in: folder)
        do {
            try await waitFor("skald \(arguments.joined(separator: " ")) to end", limit: limit) { !process.isRunning }
        } catch {
            process.kill()
            _ = await process.waitForExit()
            Issue.record("skald \(arguments.joined(separator: " ")) did not end within \(limit): \(process.stdout)")
            return (-1, process.stdout, process.stderr)
        }
        return (await process.waitForExit(), process.stdout, process.stderr)
    }

    /// `skald --version` names the release and the commit the binary was built from.
    @Test func theVersionNamesTheCommitItWasBuiltFrom() async throws {
        let folder = try temporaryFolder()
        let version = try await SkaldProcess.run(["--version"], in: folder)
        #expect(version.status == 0)
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        git.arguments = ["git", "-C", packageRoot.path, "rev-parse", "--short=12", "HEAD"]
        let pipe = Pipe()
        git.standardOutput = pipe
        git.standardError = FileHandle.nullDevice
        try git.run()
        git.waitUntilExit()
        let commit = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        // Outside a git checkout (a source tarball) the commit is unknown, and says so.
        let expected = git.terminationStatus == 0 && !commit.isEmpty ? commit : "unknown"
        #expect(version.stdout.hasPrefix("0.1.0 (commit \(expected)"), "\(version.stdout)")
    }

    @Test func watchEndsOnAStuckRunAndEveryMessageNamesAStepThatWorks() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(
                db: folder.appendingPathComponent("n.sqlite").path, environment: participants.environment, in: folder,
                extra: ["--allow-env", "INVENTORY_URL,PAYMENTS_URL,SHIPPING_URL"])
            let env = ["SKALD_SERVER": server.url]
            let sagaFile = folder.appendingPathComponent("checkout-stuck.json")
            // Patient timeouts: the run is stuck by a 404 after the pivot, and on a busy machine the checkout's 2 s
            // timeouts turned it into a compensated run instead.
            try PatientSagas.patient(try Self.stuckSaga()).write(to: sagaFile, atomically: true, encoding: .utf8)
            let defined = try await Self.run(["define", sagaFile.path], env, in: folder)
            #expect(defined.status == 0, "\(defined.stdout)\(defined.stderr)")
            let input = "@" + packageRoot.appendingPathComponent("Sagas/inputs/checkout.json").path

            // start --watch ends with the stuck run's code, and names the command that moves it on.
            let started = try await Self.run(["start", "checkout-stuck", "--input", input, "--watch"], env, in: folder)
            #expect(started.status == 5, "\(started.stdout)\(started.stderr)")
            #expect(started.stdout.contains("skald retry") && !started.stdout.contains("resume the run"), "\(started.stdout)")
            let runID = try #require(started.stdout.components(separatedBy: "started run ").last?.components(separatedBy: " ").first)
            let watched = try await Self.run(["watch", runID], env, in: folder)
            #expect(watched.status == 5, "\(watched.stdout)")
            let status = try await Self.run(["status", runID], env, in: folder)
            #expect(status.stdout.contains("`skald retry \(runID)`"), "\(status.stdout)")

            // Abandoned: it names what is still applied (the step with a compensation, not the pivot without one),
            // and nothing offers a retry that would be refused.
            let abandoned = try await Self.run(["abandon", runID, "--note", "refunded by phone"], env, in: folder)
            #expect(abandoned.status == 0, "\(abandoned.stderr)")
            #expect(abandoned.stdout.contains("still applied, not undone: reserve-stock") && !abandoned.stdout.contains("charge-card"), "\(abandoned.stdout)")
            let after = try await Self.run(["status", runID], env, in: folder)
            #expect(after.stdout.contains("abandoned by an operator") && !after.stdout.contains("skald retry"), "\(after.stdout)")
            let watchedAfter = try await Self.run(["watch", runID], env, in: folder)
            // (Its history, replayed, says what was true when it was stuck; the last line says what is true now.)
            let last = watchedAfter.stdout.split(separator: "\n").last.map(String.init) ?? ""
            #expect(watchedAfter.status == 6 && last.contains("abandoned by an operator") && !last.contains("retry"), "\(watchedAfter.stdout)")
            let retried = try await Self.run(["retry", runID], env, in: folder)
            #expect(retried.status != 0 && retried.stderr.contains("stuck"), "\(retried.stderr)")

            // A cancel that arrives while a step is in flight does not say there is nothing to undo.
            await participants[.inventory].setFaults(Faults(hold: true))
            let held = try await Self.run(["start", "checkout", "--input", input], env, in: folder)
            let heldID = try #require(held.stdout.components(separatedBy: "started run ").last?.components(separatedBy: " ").first)
            await participants[.inventory].waitForHeld()
            #expect(try await Self.run(["cancel", heldID], env, in: folder).status == 0)
            await participants[.inventory].setFaults(Faults())
            await participants[.inventory].releaseHeld()
            let cancelled = try await Self.run(["watch", heldID], env, in: folder)
            #expect(cancelled.status == 3, "\(cancelled.stdout)")
            let history = try await Self.run(["history", heldID], env, in: folder)
            #expect(!history.stdout.contains("no completed step has a compensation to run\n") && !history.stdout.contains("to run  "), "\(history.stdout)")
            #expect(history.stdout.contains("reserve-stock compensated"), "\(history.stdout)")
            server.terminate()
            _ = await server.waitForExit()
        }
    }

    @Test func aReusedIdempotencyKeyWithAnotherInputIsRefusedAndJSONErrorsAreJSON() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(db: folder.appendingPathComponent("k.sqlite").path, environment: participants.environment, in: folder)
            let env = ["SKALD_SERVER": server.url]
            try await withHTTPClient { http in
                let api = APIClient(http: http, base: server.url)
                let first = try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "k-1"), "idempotencyKey": "order-k"])
                #expect(first.status == 201)
                let again = try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "k-1"), "idempotencyKey": "order-k"])
                #expect(again.status == 200 && again.json["id"] == first.json["id"])
                let other = try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "k-2"), "idempotencyKey": "order-k"])
                #expect(other.status == 409, "\(other.json)")
                #expect(other.json["error"]?["code"] == "idempotency_key_reused")
                #expect(other.json["error"]?["message"]?.stringValue?.contains("idempotency key order-k was first used with another input") == true)
                let otherSaga = try await api.call(.POST, "/v1/runs", ["saga": "trip", "input": [:], "idempotencyKey": "order-k"])
                #expect(otherSaga.status == 409 || otherSaga.status == 422, "\(otherSaga.json)")
            }
            let inputFile = folder.appendingPathComponent("other.json")
            try DemoSagas.checkoutInput(orderId: "k-3").prettyText.write(to: inputFile, atomically: true, encoding: .utf8)
            let cli = try await Self.run(["start", "checkout", "--input", "@" + inputFile.path, "--idempotency-key", "order-k"], env, in: folder)
            #expect(cli.status == 1 && cli.stderr.contains("first used with another input"), "\(cli.stdout)\(cli.stderr)")

            let missing = try await Self.run(["status", "NOPE", "--json"], env, in: folder)
            #expect(missing.status == 1)
            let error = try JSONParser.parse(missing.stdout)
            #expect(error["error"]?["code"] == "not_found" && error["error"]?["status"] == 404, "\(missing.stdout)")
            let noServer = try await Self.run(["list", "--json"], ["SKALD_SERVER": "http://127.0.0.1:1"], in: folder)
            #expect(try JSONParser.parse(noServer.stdout)["error"]?["code"] == "no_server", "\(noServer.stdout)")
            server.terminate()
            _ = await server.waitForExit()
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct DefineTests {
    /// A changed definition registered without bumping its version hears that first, not that it reads variables the
    /// server does not allow; and each of those problems has its line and column.
    @Test func theVersionConflictComesFirstAndEveryProblemHasItsLine() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(
                db: folder.appendingPathComponent("d.sqlite").path, environment: participants.environment, in: folder, extra: ["--allow-env", "*_URL"])
            let env = ["SKALD_SERVER": server.url]
            let original = try String(contentsOf: packageRoot.appendingPathComponent("Sagas/checkout.json"), encoding: .utf8)
            let changed = folder.appendingPathComponent("changed.json")
            try original.replacingOccurrences(of: "{{env.SHIPPING_URL}}/shipments", with: "{{env.SHIPPING_TOKEN}}/shipments")
                .write(to: changed, atomically: true, encoding: .utf8)
            let conflict = try await NewcomerTests.run(["define", changed.path], env, in: folder)
            #expect(conflict.status != 0)
            #expect(conflict.stderr.contains("already registered with other content") && !conflict.stderr.contains("SHIPPING_TOKEN"), "\(conflict.stderr)")
            // Under a new version, the variable the server does not allow (a *_URL glob allows the others), at its line.
            let bumped = folder.appendingPathComponent("bumped.json")
            try original.replacingOccurrences(of: "{{env.SHIPPING_URL}}/shipments", with: "{{env.SHIPPING_TOKEN}}/shipments")
                .replacingOccurrences(of: "\"version\": 1", with: "\"version\": 2").write(to: bumped, atomically: true, encoding: .utf8)
            let refused = try await NewcomerTests.run(["define", bumped.path], env, in: folder)
            #expect(refused.status == 2)
            let line = try #require(refused.stderr.split(separator: "\n").first { $0.contains("SHIPPING_TOKEN") }, "\(refused.stderr)")
            #expect(line.hasPrefix("\(bumped.path):") && line.split(separator: ":").count >= 4 && Int(line.split(separator: ":")[1]) != nil, "\(line)")
            server.terminate()
            _ = await server.waitForExit()
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct ServeOutputTests {
    /// In plain-log mode standard error is for warnings and errors only: a node's info lines go to standard output.
    @Test(.tags(.postgres), .needs(.postgres)) func infoLinesGoToStandardOutput() async throws {
        let folder = try temporaryFolder()
        let server = try await ServeProcess(db: try await DatabaseKind.postgres.newDatabase(), environment: [:], in: folder)
        try await waitFor("the node to say it joined") { server.process.stdout.contains("node joined") }
        server.terminate()
        _ = await server.waitForExit()
        #expect(!server.process.stderr.contains(" info "), "\(server.process.stderr)")
        #expect(server.process.stdout.contains("node joined"))
    }
}

import AsyncHTTPClient
import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldSQLite
import Testing
import SkaldTestSupport

/// `skald serve` and the client verbs, as a user drives them from two terminals.
@Suite(.tags(.postgres), .timeLimit(.minutes(10))) struct ServeTests {
    @Test(arguments: DatabaseKind.tested)
    func theClientVerbsDriveAServer(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            // Patient copies of the examples: on a busy machine their one-second timeouts would change the outcome.
            let sagas = try PatientSagas.folder(in: folder)
            let server = try await ServeProcess(db: try await kind.newDatabase(), environment: participants.environment, in: folder, sagas: sagas)
            let env = ["SKALD_SERVER": server.url]
            let inputFile = packageRoot.appendingPathComponent("Sagas/inputs/checkout.json").path

            let empty = try await SkaldProcess.run(["list"], environment: env, in: folder)
            #expect(empty.status == 0)
            #expect(empty.stdout.contains("no runs"))

            let defined = try await SkaldProcess.run(["define", sagas + "/checkout.json"], environment: env, in: folder)
            #expect(defined.status == 0)
            #expect(defined.stdout.contains("checkout v1 is already registered"))

            let definitions = try await SkaldProcess.run(["definitions"], environment: env, in: folder)
            #expect(definitions.status == 0)
            #expect(definitions.stdout.hasPrefix("SAGA"))
            #expect(definitions.stdout.contains("reserve-stock → charge-card → ship-order"))
            let one = try await SkaldProcess.run(["definition", "checkout"], environment: env, in: folder)
            #expect(try JSONParser.parse(one.stdout)["name"] == "checkout")
            let none = try await SkaldProcess.run(["definition", "nope"], environment: env, in: folder)
            #expect(none.status == 1)
            #expect(none.stderr.contains("no saga \"nope\" is registered"))

            let watched = try await SkaldProcess.run(["start", "checkout", "--input", "@\(inputFile)", "--watch"], environment: env, in: folder)
            #expect(watched.status == 0, "\(watched.stdout)\(watched.stderr)")
            #expect(watched.stdout.contains("started run "))
            #expect(watched.stdout.split(separator: "\n").contains { $0.contains("ship-order") && $0.contains("ok") && $0.contains("HTTP 201") })
            #expect(watched.stdout.contains("completed (watched for"))
            let runID = try #require(watched.stdout.components(separatedBy: "started run ").last?.components(separatedBy: " ").first)

            let declined = try await SkaldProcess.run(
                ["start", "checkout", "--input", checkoutInput(card: Participant.decliningCard), "--watch"], environment: env, in: folder)
            #expect(declined.status == 3, "\(declined.stdout)\(declined.stderr)")
            #expect(declined.stdout.contains("reserve-stock (undo)"))

            let list = try await SkaldProcess.run(["list"], environment: env, in: folder)
            #expect(list.stdout.hasPrefix("RUN"))
            #expect(list.stdout.contains(runID))
            #expect(list.stdout.contains("completed"))
            #expect(list.stdout.contains("compensated"))
            #expect(list.stdout.contains("charge-card: HTTP 402"))
            let filtered = try await SkaldProcess.run(["list", "--status", "completed", "--json"], environment: env, in: folder)
            let page = try JSONParser.parse(filtered.stdout)
            #expect(page["runs"]?.arrayValue?.count == 1)

            let status = try await SkaldProcess.run(["status", runID], environment: env, in: folder)
            #expect(status.stdout.contains("run \(runID) of checkout v1: completed"))
            #expect(status.stdout.contains("STEP"))
            #expect(status.stdout.contains("reserve-stock"))

            let history = try await SkaldProcess.run(["history", runID], environment: env, in: folder)
            #expect(history.stdout.contains("run_started"))
            #expect(history.stdout.contains("run_completed"))

            let cancel = try await SkaldProcess.run(["cancel", runID], environment: env, in: folder)
            #expect(cancel.status == 1)
            #expect(cancel.stderr.contains("already finished"))
            let unknown = try await SkaldProcess.run(["status", "NO-SUCH-RUN"], environment: env, in: folder)
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("no run with id NO-SUCH-RUN; `skald list` shows the runs"))
            let badInput = try await SkaldProcess.run(["start", "checkout", "--input", "{}"], environment: env, in: folder)
            #expect(badInput.status == 2)
            #expect(badInput.stderr.contains("input lacks the required field"))

            server.terminate()
            #expect(await server.waitForExit() == 0)
            let noServer = try await SkaldProcess.run(["list"], environment: env, in: folder)
            #expect(noServer.status == 1)
            #expect(noServer.stderr.contains("no Skald server answers at \(server.url)"))
            #expect(noServer.stderr.contains("skald serve"))
        }
    }

    /// One engine per SQLite file (PostgreSQL takes several nodes: see `MultiNodeTests`).
    @Test func aSecondEngineOnTheSameSQLiteFileIsRefused() async throws {
        let folder = try temporaryFolder()
        let db = try await DatabaseKind.sqlite.newDatabase()
        let server = try await ServeProcess(db: db, environment: [:], in: folder)
        let second = try await SkaldProcess.run(["serve", "--db", db, "--port", "0"], in: folder)
        #expect(second.status == 1)
        #expect(second.stderr.contains("another skald process (serve, run or resume) is using the database"), "\(second.stderr)")
        let resume = try await SkaldProcess.run(["resume", "--db", db], in: folder)
        #expect(resume.status == 1)
        server.terminate()
        #expect(await server.waitForExit() == 0)
    }

    @Test(arguments: DatabaseKind.tested)
    func sigtermLetsAttemptsInFlightFinishAndStoresTheirOutcomes(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await kind.newDatabase()
            let sagas = try PatientSagas.folder(in: folder)
            let server = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            await participants[.payments].setFaults(Faults(hold: true))
            let runID = try await withHTTPClient { http in
                let api = APIClient(http: http, base: server.url)
                let (status, run) = try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "t1")])
                #expect(status == 201)
                return run["id"]?.stringValue ?? ""
            }
            await participants[.payments].waitForHeld()
            server.terminate()
            // The HTTP side stops first; the engine then waits for the charge in flight.
            try await waitFor("the API to stop answering") {
                (try? await withHTTPClient { http in try await APIClient(http: http, base: server.url).call(.GET, "/health", timeout: .seconds(1)) }) == nil
            }
            await participants[.payments].setFaults(Faults())
            await participants[.payments].releaseHeld()
            #expect(await server.waitForExit() == 0)
            #expect(server.process.stdout.contains("stopped"))

            let (attempts, stopped) = try await withStore(db) { store in
                (try await store.attempts(runID: runID), try await store.run(id: runID))
            }
            let charge = try #require(attempts.first { $0.key.stepName == "charge-card" })
            // The attempt in flight was allowed to finish (or reach its 2s deadline) and its outcome was stored.
            #expect(charge.finishedAt != nil, "the outcome of the attempt in flight was stored")
            #expect(charge.succeeded == true, "\(charge)")
            #expect(stopped?.state.status == .running)

            // A new server carries on from there.
            let restarted = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            let watched = try await SkaldProcess.run(["watch", runID], environment: ["SKALD_SERVER": restarted.url], in: folder)
            #expect(watched.status == 0, "\(watched.stdout)\(watched.stderr)")
            #expect(await participants[.payments].ledger.count == 1)
            restarted.terminate()
            _ = await restarted.waitForExit()
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aShutdownPastItsTimeoutAbandonsTheAttemptInFlightAndStoresNothingForIt(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await kind.newDatabase()
            // --prune-older-than used to make every SIGTERM exit 1 and store the cancelled calls as failures.
            // Patient sagas: the held call must not reach its own timeout before the shutdown's on a busy machine.
            let sagas = try PatientSagas.folder(in: folder)
            let server = try await ServeProcess(
                db: db, environment: participants.environment, in: folder, sagas: sagas,
                extra: ["--prune-older-than", "7d", "--shutdown-timeout", "200ms"])
            await participants[.payments].setFaults(Faults(hold: true))
            let runID = try await withHTTPClient { http in
                let (_, run) = try await APIClient(http: http, base: server.url).call(
                    .POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "t2")])
                return run["id"]?.stringValue ?? ""
            }
            await participants[.payments].waitForHeld()
            server.terminate()
            #expect(await server.waitForExit() == 0, "\(server.process.stdout)\(server.process.stderr)")

            let (attempts, stopped) = try await withStore(db) { store in
                (try await store.attempts(runID: runID), try await store.run(id: runID))
            }
            let charge = try #require(attempts.first { $0.key.stepName == "charge-card" })
            // Cancelled is not an outcome: the attempt is still in flight, with nothing recorded against it.
            #expect(charge.finishedAt == nil, "\(charge)")
            #expect(charge.error == nil)
            #expect(stopped?.state.steps[1].isInFlight == true)

            await participants[.payments].setFaults(Faults())
            await participants[.payments].releaseHeld()
            let restarted = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            let watched = try await SkaldProcess.run(["watch", runID], environment: ["SKALD_SERVER": restarted.url], in: folder)
            #expect(watched.status == 0, "\(watched.stdout)\(watched.stderr)")
            let resent = try #require(try await withStore(db) { try await $0.attempts(runID: runID) }.first { $0.key.stepName == "charge-card" })
            #expect(resent.key.number == 1)
            #expect(resent.sends == 2)
            // The held request and the one sent again carry the same key: the charge is applied once.
            #expect(await participants[.payments].applicationsPerKey["\(runID):charge-card:forward"] == 1)
            restarted.terminate()
            #expect(await restarted.waitForExit() == 0)
        }
    }

    /// A `--sagas` file that changed without a new version stops the start, before anything is served, on both
    /// stores (on PostgreSQL the registration runs once the service has started the pool).
    @Test(arguments: DatabaseKind.tested)
    func aChangedDefinitionInSagasStopsTheStart(kind: DatabaseKind) async throws {
        let folder = try temporaryFolder()
        let db = try await kind.newDatabase()
        let sagas = folder.appendingPathComponent("sagas")
        try FileManager.default.createDirectory(at: sagas, withIntermediateDirectories: true)
        let checkout = try String(contentsOf: packageRoot.appendingPathComponent("Sagas/checkout.json"), encoding: .utf8)
        try checkout.write(to: sagas.appendingPathComponent("checkout.json"), atomically: true, encoding: .utf8)
        let first = try await ServeProcess(db: db, environment: [:], in: folder, sagas: sagas.path)
        first.terminate()
        #expect(await first.waitForExit() == 0)

        let changed = checkout.replacingOccurrences(of: #""timeout": "2s""#, with: #""timeout": "3s""#)
        #expect(changed != checkout)
        try changed.write(to: sagas.appendingPathComponent("checkout.json"), atomically: true, encoding: .utf8)
        let second = try await SkaldProcess.run(["serve", "--db", db, "--port", "0", "--sagas", sagas.path], in: folder)
        #expect(second.status == 2, "\(second.stdout)\(second.stderr)")
        let said = second.stdout + second.stderr
        #expect(said.contains("checkout version 1 is already registered with other content"), "\(said)")
        #expect(said.contains("not starting"), "\(said)")
        #expect(!said.contains("listening on"), "\(said)")
    }

    @Test func onATerminalTheListsColumnsLineUpDespiteColours() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let server = try await ServeProcess(db: folder.appendingPathComponent("s.sqlite").path, environment: participants.environment, in: folder)
            defer { server.kill9() }
            let env = ["SKALD_SERVER": server.url]
            let inputFile = packageRoot.appendingPathComponent("Sagas/inputs/checkout.json").path
            _ = try await SkaldProcess.run(["start", "checkout", "--input", "@\(inputFile)", "--watch"], environment: env, in: folder)
            _ = try await SkaldProcess.run(
                ["start", "checkout", "--input", checkoutInput(card: Participant.decliningCard), "--watch"], environment: env, in: folder)
            // `script` gives skald a terminal, so it colours the statuses.
            var terminal = env
            terminal["NO_COLOR"] = nil
            terminal["TERM"] = "xterm"
            let listed = try await SkaldProcess.shell(
                ["script", "-qec", "\(skaldBinary.path) list --server \(server.url)", "/dev/null"], in: folder, environment: terminal)
            #expect(listed.stdout.contains("\u{1B}["), "the statuses are coloured on a terminal")
            let lines = listed.stdout.replacingOccurrences(of: "\r", with: "").split(separator: "\n").map {
                $0.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
            }.filter { !$0.isEmpty }
            let header = try #require(lines.first)
            let column = try #require(header.range(of: "STARTED")).lowerBound.utf16Offset(in: header)
            for line in lines.dropFirst() {
                let prefix = String(line.prefix(column))
                #expect(prefix.hasSuffix("  "), "the STARTED column does not line up: \(line)")
            }
        }
    }

    @Test func clientErrorsSayWhatIsWrongAndWhere() async throws {
        let folder = try temporaryFolder()
        // No participant URLs in the server's environment.
        let server = try await ServeProcess(db: folder.appendingPathComponent("s.sqlite").path, environment: [:], in: folder)
        defer { server.kill9() }
        let env = ["SKALD_SERVER": server.url]
        let inputFile = packageRoot.appendingPathComponent("Sagas/inputs/checkout.json").path
        let started = try await SkaldProcess.run(["start", "checkout", "--input", "@\(inputFile)"], environment: env, in: folder)
        #expect(started.status == 2)
        #expect(started.stderr.contains("this server cannot run saga checkout as it is configured: its environment lacks INVENTORY_URL"), "\(started.stderr)")
        #expect(!started.stderr.contains("the input does not fit"))

        let bad = folder.appendingPathComponent("bad.json")
        try #"{"name": "bad", "version": 1, "steps": [{"name": "a", "request": {"method": "FETCH", "url": "http://127.0.0.1:1/"}}]}"#
            .write(to: bad, atomically: true, encoding: .utf8)
        let invalid = try await SkaldProcess.run(["define", bad.path], environment: env, in: folder)
        #expect(invalid.status == 2)
        #expect(invalid.stderr.contains("\(bad.path):1:"), "\(invalid.stderr)")
        #expect(invalid.stderr.contains(": steps[0].request.method: "), "\(invalid.stderr)")
        let broken = folder.appendingPathComponent("broken.json")
        try #"{"name": "#.write(to: broken, atomically: true, encoding: .utf8)
        let malformed = try await SkaldProcess.run(["define", broken.path], environment: env, in: folder)
        #expect(malformed.status == 2)
        #expect(malformed.stderr.hasPrefix("\(broken.path): the body is not valid JSON"), "\(malformed.stderr)")
    }

    @Test func aPortInUseIsNamedWithWhatToDo() async throws {
        let folder = try temporaryFolder()
        let first = try await ServeProcess(db: folder.appendingPathComponent("a.sqlite").path, environment: [:], in: folder)
        defer { first.kill9() }
        let port = try #require(first.url.split(separator: ":").last.map(String.init))
        let second = try await SkaldProcess.run(
            ["serve", "--db", folder.appendingPathComponent("b.sqlite").path, "--port", port], in: folder)
        #expect(second.status == 1)
        #expect(second.stderr.contains("cannot listen on 127.0.0.1:\(port): the address is already in use"), "\(second.stderr)")
        #expect(second.stderr.contains("--port"))
    }

    @Test func anEmptyTokenIsRefusedRatherThanServingWithoutOne() async throws {
        let folder = try temporaryFolder()
        let result = try await SkaldProcess.run(["serve", "--db", folder.appendingPathComponent("s.sqlite").path, "--token", ""], in: folder)
        #expect(result.status == 64)
        #expect(result.stderr.contains("--token is empty"))
    }

    @Test(arguments: DatabaseKind.tested)
    func aServerKilledUnderLoadLosesNothingAndAppliesNothingTwice(kind: DatabaseKind) async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await kind.newDatabase()
            let sagas = try PatientSagas.folder(in: folder)
            let server = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            // Shipping holds every request it gets: runs pile up in their last step while others are earlier.
            await participants[.shipping].setFaults(Faults(hold: true))
            let count = 100
            let posting = ContinuousClock.now
            let ids = try await withHTTPClient { http in
                let api = APIClient(http: http, base: server.url)
                return try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<count {
                        group.addTask {
                            let card = index % 10 == 9 ? Participant.decliningCard : "4242424242424242"
                            // A hundred at once on a busy machine: each may wait long for the server (a debug build).
                            let (status, run) = try await api.call(
                                .POST, "/v1/runs",
                                ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "load-\(index)", card: card),
                                 "idempotencyKey": .string("load-\(index)")], timeout: .seconds(600))
                            #expect(status == 201)
                            return run["id"]?.stringValue ?? ""
                        }
                    }
                    var ids: [String] = []
                    for try await id in group { ids.append(id) }
                    return ids
                }
            }
            print("\(kind): \(count) runs started in \(ContinuousClock.now - posting)")
            #expect(Set(ids).count == count)
            await participants[.shipping].waitForHeld(count: 30)
            server.kill9()
            _ = await server.waitForExit()
            await participants[.shipping].setFaults(Faults())
            await participants[.shipping].releaseHeld()

            let restarted = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            try await withHTTPClient { http in
                let api = APIClient(http: http, base: restarted.url)
                try await waitFor("every run to finish", limit: .seconds(300)) {
                    let running = try? await api.call(.GET, "/v1/runs?status=running&limit=1")
                    let compensating = try? await api.call(.GET, "/v1/runs?status=compensating&limit=1")
                    return running?.json["runs"] == [] && compensating?.json["runs"] == []
                }
                // Starting again with the same keys returns the same runs: nothing duplicated.
                let again = try await api.call(
                    .POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "load-0"), "idempotencyKey": "load-0"])
                #expect(again.status == 200)
            }
            restarted.terminate()
            #expect(await restarted.waitForExit() == 0)

            let all = try await listRuns(db, RunQuery(limit: 500))
            #expect(all.count == count)
            #expect(Set(all.map(\.id)) == Set(ids))
            #expect(all.filter { $0.status == .completed }.count == 90)
            #expect(all.filter { $0.status == .compensated }.count == 10)
            for kind in Participant.Kind.allCases {
                let perKey = await participants[kind].applicationsPerKey
                #expect(perKey.values.allSatisfy { $0 == 1 }, "\(kind) applied a key twice")
            }
            #expect(await participants[.shipping].ledger.filter { $0.action == "ship" }.count == 90)
            #expect(await participants[.payments].ledger.filter { $0.action == "charge" }.count == 90)
            #expect(await participants[.inventory].ledger.filter { $0.action == "reserve" }.count == 100)
            #expect(await participants[.inventory].ledger.filter { $0.action == "release" }.count == 10)
        }
    }
}


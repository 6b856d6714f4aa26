import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import Testing
import SkaldTestSupport

/// Several `skald serve` processes on one PostgreSQL database.
@Suite(.serialized, .tags(.postgres), .needs(.postgres), .timeLimit(.minutes(10))) struct MultiNodeTests {
    /// Three nodes, 300 runs started through one node's API, the shipping participant holding every call; one node
    /// is killed with SIGKILL while its calls are in flight. Every run completes, all three nodes drove runs, the
    /// killed node's runs are taken over once its lease lapses and their calls are sent again with the same keys,
    /// and no key is applied twice.
    @Test func threeNodesShareTheRunsAndTakeOverTheRunsOfAKilledOne() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await DatabaseKind.postgres.newDatabase()
            let sagas = try PatientSagas.folder(in: folder)
            let lease = Duration.seconds(3)
            var nodes: [ServeProcess] = []
            for _ in 0..<3 {
                nodes.append(
                    try await ServeProcess(
                        db: db, environment: participants.environment, in: folder, sagas: sagas,
                        extra: ["--lease", "3s", "--concurrency", "400"]))
            }
            // Stopped however the test ends, so no node outlives the test run.
            defer { for node in nodes { node.kill9() } }
            let nodeIDs = try nodes.map { try #require($0.node, "\($0.process.stdout)") }
            #expect(Set(nodeIDs).count == 3)
            await participants[.shipping].setFaults(Faults(hold: true))

            let count = 300
            let runIDs = try await withHTTPClient { http in
                let api = APIClient(http: http, base: nodes[0].url)
                var ids: [String] = []
                // All through the first node's API: the nodes claim the new runs between themselves.
                for batch in stride(from: 0, to: count, by: 25) {
                    ids += try await withThrowingTaskGroup(of: String.self) { group in
                        for index in batch..<min(count, batch + 25) {
                            group.addTask {
                                let (status, run) = try await api.call(
                                    .POST, "/v1/runs",
                                    ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "multi-\(index)"),
                                     "idempotencyKey": .string("multi-\(index)")])
                                #expect(status == 201)
                                return run["id"]?.stringValue ?? ""
                            }
                        }
                        var ids: [String] = []
                        for try await id in group { ids.append(id) }
                        return ids
                    }
                }
                return ids
            }
            #expect(Set(runIDs).count == count)
            try await waitFor("every run's shipment to be held", limit: .seconds(300)) {
                await participants[.shipping].heldCount >= count
            }

            // Which node sent each run's shipment.
            let shippedBy = try await withStore(db) { store in
                var shippedBy: [String: String] = [:]
                for id in runIDs {
                    let attempts = try await store.attempts(runID: id)
                    shippedBy[id] = attempts.first { $0.key.stepName == "ship-order" }?.node
                }
                return shippedBy
            }
            let perNode = Dictionary(grouping: shippedBy.keys) { shippedBy[$0] ?? "" }.mapValues(\.count)
            print("runs per node before the kill: \(perNode)")
            #expect(Set(perNode.keys) == Set(nodeIDs), "every node drives runs: \(perNode)")

            let victim = nodes[1]
            let victimID = nodeIDs[1]
            let victimRuns = Set(shippedBy.filter { $0.value == victimID }.map(\.key))
            let killedAt = Date()
            victim.kill9()
            _ = await victim.waitForExit()
            // The participant answers every call it held; the killed node's answers find nobody.
            await participants[.shipping].setFaults(Faults())
            await participants[.shipping].releaseHeld()

            try await withHTTPClient { http in
                let api = APIClient(http: http, base: nodes[2].url)
                try await waitFor("every run to finish", limit: .seconds(300)) {
                    let running = try? await api.call(.GET, "/v1/runs?status=running&limit=1")
                    let compensating = try? await api.call(.GET, "/v1/runs?status=compensating&limit=1")
                    return running?.json["runs"] == [] && compensating?.json["runs"] == []
                }
            }
            let all = try await listRuns(db, RunQuery(limit: 500))
            #expect(all.count == count)
            #expect(all.allSatisfy { $0.status == .completed }, "\(Dictionary(grouping: all, by: \.status).mapValues(\.count))")
            for kind in Participant.Kind.allCases {
                let perKey = await participants[kind].applicationsPerKey
                #expect(perKey.values.allSatisfy { $0 == 1 }, "\(kind) applied a key twice")
            }
            #expect(await participants[.shipping].ledger.filter { $0.action == "ship" }.count == count)

            // The killed node's runs were taken over by the others within the lease (plus the poll and a busy
            // machine's slack), and their held shipment was sent again with the same key.
            try await withStore(db) { store in
                var latest: TimeInterval = 0
                for id in victimRuns {
                    let events = try await store.events(runID: id)
                    // The take-over from the killed node (on a busy machine a node that missed its renewals may have
                    // lost a run to another before the kill, too: that is a take-over of its own).
                    let takeOver = try #require(
                        events.last { $0.kind == .runTakenOver && $0.data["from"] == .string(victimID) },
                        "run \(id) was taken over from the killed node: \(events.filter { $0.kind == .runTakenOver }.map(\.data))")
                    #expect(takeOver.data["to"]?.stringValue.map { $0 != victimID && nodeIDs.contains($0) } == true)
                    latest = max(latest, takeOver.at.timeIntervalSince(killedAt))
                    let ship = try #require(try await store.attempts(runID: id).first { $0.key.stepName == "ship-order" })
                    #expect(ship.sends == 2 && ship.succeeded == true && ship.node != victimID, "\(ship)")
                }
                print("took over \(victimRuns.count) runs of the killed node; the last \(String(format: "%.1f", latest))s after the kill (lease 3s)")
                #expect(latest <= lease.seconds + 10)
            }
            for node in [nodes[0], nodes[2]] {
                node.terminate()
                #expect(await node.waitForExit() == 0)
            }
        }
    }

    /// A node started without --sagas (so its environment lets definitions read nothing) takes over a killed node's
    /// runs: it cannot build their calls, so it hands them back untouched and says so in its log and /health, instead
    /// of failing them; a node that can run them later completes every one.
    @Test func aNodeThatCannotRunASagaLeavesItsRunsToANodeThatCan() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await DatabaseKind.postgres.newDatabase()
            let sagas = try PatientSagas.folder(in: folder)
            let first = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas, extra: ["--lease", "2s"])
            var nodes = [first]
            defer { for node in nodes { node.kill9() } }
            await participants[.inventory].setFaults(Faults(hold: true))
            let count = 14
            let runIDs = try await withHTTPClient { http in
                let api = APIClient(http: http, base: first.url)
                var ids: [String] = []
                for index in 0..<count {
                    let (status, run) = try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "narrow-\(index)")])
                    #expect(status == 201)
                    ids.append(run["id"]?.stringValue ?? "")
                }
                return ids
            }
            try await waitFor("every reservation to be held", limit: .seconds(300)) { await participants[.inventory].heldCount >= count }
            // The narrow node: the participants' URLs are in its process's environment, but nothing lets definitions read them.
            let narrow = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: nil, extra: ["--lease", "2s"])
            nodes.append(narrow)
            first.kill9()
            _ = await first.waitForExit()
            await participants[.inventory].setFaults(Faults())
            await participants[.inventory].releaseHeld()

            try await withHTTPClient { http in
                let api = APIClient(http: http, base: narrow.url)
                try await waitFor("the narrow node to say it cannot run checkout", limit: .seconds(120)) {
                    let health = try? await api.call(.GET, "/health")
                    return health?.json["warnings"]?.arrayValue?.first?.stringValue?.contains("cannot run checkout v1") == true
                }
                let health = try await api.call(.GET, "/health")
                #expect(health.status == 200)
                let warning = health.json["warnings"]?.arrayValue?.first?.stringValue ?? ""
                #expect(warning.contains("INVENTORY_URL") && warning.contains("--allow-env"), "\(warning)")
            }
            #expect(narrow.process.stderr.contains("cannot run checkout v1") || narrow.process.stdout.contains("cannot run checkout v1"))
            // Nothing was failed or compensated: every run is still running, with no step failed.
            try await withStore(db) { store in
                for id in runIDs {
                    let run = try #require(try await store.run(id: id))
                    #expect(run.state.status == .running, "\(id) is \(run.state.status)")
                    let kinds = try await store.events(runID: id).map(\.kind)
                    #expect(!kinds.contains(.stepFailed) && !kinds.contains(.compensationStarted), "\(id): \(kinds)")
                }
            }
            // A node that can run them takes them and completes every one, each reservation applied once.
            let able = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas, extra: ["--lease", "2s"])
            nodes.append(able)
            try await waitFor("every run to complete", limit: .seconds(300)) {
                let runs = (try? await listRuns(db, RunQuery(limit: 100))) ?? []
                return runs.count == count && runs.allSatisfy { $0.status == .completed }
            }
            #expect(await participants[.inventory].applicationsPerKey.values.allSatisfy { $0 == 1 })
            for node in [narrow, able] {
                node.terminate()
                #expect(await node.waitForExit() == 0)
            }
        }
    }

    /// An operator's cancel sent to a node that does not drive the run is carried out by the node that does, and
    /// `skald watch` through the other node follows the run to its end.
    @Test func anActionSentToAnotherNodeReachesTheOwnerAndWatchFollowsAcrossNodes() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await DatabaseKind.postgres.newDatabase()
            let sagas = try PatientSagas.folder(in: folder)
            let first = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            let second = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            let nodes = [first, second]
            defer { for node in nodes { node.kill9() } }
            await participants[.payments].setFaults(Faults(hold: true))
            let runID = try await withHTTPClient { http in
                let (status, run) = try await APIClient(http: http, base: first.url).call(
                    .POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "across-1")])
                #expect(status == 201)
                return try #require(run["id"]?.stringValue)
            }
            await participants[.payments].waitForHeld()
            let owner = try await withStore(db) { store in
                try await store.attempts(runID: runID).first { $0.key.stepName == "charge-card" }?.node
            }
            let ownerIndex = try #require(nodes.firstIndex { $0.node == owner })
            let other = nodes[1 - ownerIndex]

            let watch = try SkaldProcess(["watch", runID], environment: ["SKALD_SERVER": other.url], in: folder)
            let cancelled = try await SkaldProcess.run(
                ["cancel", runID, "--reason", "customer called", "--by", "ana"], environment: ["SKALD_SERVER": other.url], in: folder)
            #expect(cancelled.status == 0, "\(cancelled.stdout)\(cancelled.stderr)")
            // A second cancel, again through the other node, gets the owner's conflict.
            let again = try await SkaldProcess.run(["cancel", runID], environment: ["SKALD_SERVER": other.url], in: folder)
            #expect(again.status != 0)
            #expect(again.stderr.contains("already compensating"), "\(again.stderr)")

            await participants[.payments].setFaults(Faults())
            await participants[.payments].releaseHeld()
            #expect(await watch.waitForExit() == 3, "\(watch.stdout)\(watch.stderr)")
            #expect(watch.stdout.contains("ana cancelled") || watch.stdout.contains("customer called"), "\(watch.stdout)")
            let run = try #require(try await withStore(db) { try await $0.run(id: runID) })
            #expect(run.state.status == .compensated)
            #expect(await participants[.payments].ledger.map(\.action) == ["charge", "refund"])
            for node in nodes {
                node.terminate()
                #expect(await node.waitForExit() == 0)
            }
        }
    }

    /// A cancel sent to the node that does not drive the run, while the owner cannot write (another session holds
    /// the event table): the owner has taken it, so it is not withdrawn; the caller hears "accepted" (202), not
    /// "nothing was done", and once the table is free the owner carries it out and the run is compensated.
    @Test func aForwardedActionTheOwnerTookIsNeverReportedAsNotDone() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await DatabaseKind.postgres.newDatabase()
            let sagas = try PatientSagas.folder(in: folder)
            let first = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            let second = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas)
            let nodes = [first, second]
            defer { for node in nodes { node.kill9() } }
            await participants[.payments].setFaults(Faults(hold: true))
            let runID = try await withHTTPClient { http in
                let (status, run) = try await APIClient(http: http, base: first.url).call(
                    .POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "taken-1")])
                #expect(status == 201)
                return try #require(run["id"]?.stringValue)
            }
            await participants[.payments].waitForHeld()
            let owner = try await withStore(db) { store in
                try await store.attempts(runID: runID).first { $0.key.stepName == "charge-card" }?.node
            }
            let other = nodes[1 - (try #require(nodes.firstIndex { $0.node == owner }))]

            // Another session locks the history table: the owner can take the command, but not store the cancel.
            let locker = try ChildProcess(
                executable: "/usr/bin/psql",
                [db, "-v", "ON_ERROR_STOP=1", "-c", "BEGIN; LOCK TABLE event IN EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;"],
                environment: ProcessInfo.processInfo.environment, directory: folder, outputIn: folder)
            defer { kill(locker.pid, SIGKILL) }
            try await waitFor("the lock to be held", limit: .seconds(60)) {
                (try? await Self.psql(db, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'event' AND l.mode = 'ExclusiveLock' AND l.granted", in: folder)) == "1"
            }
            let answer = try await withHTTPClient { http in
                try await APIClient(http: http, base: other.url).call(.POST, "/v1/runs/\(runID)/cancel", ["reason": "customer called"], timeout: .seconds(120))
            }
            #expect(answer.status == 202, "\(answer.json)")
            #expect(answer.json["accepted"]?.stringValue?.contains("took the action") == true, "\(answer.json)")
            #expect(answer.json["error"] == nil)
            // The table is free again: the owner stores the cancel it took, and the run is compensated.
            _ = try await Self.psql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%LOCK TABLE event%' AND pid <> pg_backend_pid()", in: folder)
            await participants[.payments].setFaults(Faults())
            await participants[.payments].releaseHeld()
            try await waitFor("the run to be compensated", limit: .seconds(120)) {
                (try? await withStore(db) { try await $0.run(id: runID) })??.state.status == .compensated
            }
            let events = try await withStore(db) { try await $0.events(runID: runID) }
            #expect(events.filter { $0.kind == .runCancelled && $0.message.hasPrefix("run cancelled by") }.count == 1, "\(events.map { "\($0.kind): \($0.message)" })")
        }
    }

    /// Runs one statement with psql and returns what it printed, trimmed.
    static func psql(_ db: String, _ sql: String, in folder: URL) async throws -> String {
        let child = try ChildProcess(
            executable: "/usr/bin/psql", [db, "-tA", "-c", sql], environment: ProcessInfo.processInfo.environment, directory: folder,
            outputIn: folder)
        _ = await child.waitForExit()
        return child.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A node frozen (SIGSTOP) past its lease loses its runs to the other node, which sends their held calls again
    /// with the same keys; thawed, the frozen node's answers arrive, but its writes are refused (fenced): it drops
    /// the runs, stores nothing for them, and no participant applies a key twice.
    @Test func aFrozenNodeLosesItsRunsAndCannotStoreAnythingForThemAfterwards() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let db = try await DatabaseKind.postgres.newDatabase()
            let sagas = try PatientSagas.folder(in: folder)
            let first = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas, extra: ["--lease", "2s"])
            let second = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: sagas, extra: ["--lease", "2s"])
            defer {
                kill(second.process.child.pid, SIGCONT)
                for node in [first, second] { node.kill9() }
            }
            let frozenID = try #require(second.node)
            await participants[.shipping].setFaults(Faults(hold: true))
            let count = 30
            let runIDs = try await withHTTPClient { http in
                let api = APIClient(http: http, base: first.url)
                var ids: [String] = []
                for index in 0..<count {
                    let (status, run) = try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: "frozen-\(index)")])
                    #expect(status == 201)
                    ids.append(run["id"]?.stringValue ?? "")
                }
                return ids
            }
            try await waitFor("every shipment to be held", limit: .seconds(300)) { await participants[.shipping].heldCount >= count }
            let frozenRuns = try await withStore(db) { store in
                var runs: [String] = []
                for id in runIDs where try await store.attempts(runID: id).contains(where: { $0.key.stepName == "ship-order" && $0.node == frozenID }) {
                    runs.append(id)
                }
                return runs
            }
            try #require(!frozenRuns.isEmpty, "the second node drives some runs")

            kill(second.process.child.pid, SIGSTOP)
            try await waitFor("the frozen node's runs to be taken over", limit: .seconds(120)) {
                (try? await withStore(db) { store in
                    for id in frozenRuns where try await store.events(runID: id).allSatisfy({ $0.kind != .runTakenOver }) { return false }
                    return true
                }) ?? false
            }
            // Every held call is answered: the frozen node's answers wait in its sockets.
            await participants[.shipping].setFaults(Faults())
            await participants[.shipping].releaseHeld()
            try await withHTTPClient { http in
                let api = APIClient(http: http, base: first.url)
                try await waitFor("every run to finish", limit: .seconds(300)) {
                    (try? await api.call(.GET, "/v1/runs?status=running&limit=1"))?.json["runs"] == []
                }
            }
            kill(second.process.child.pid, SIGCONT)
            try await waitFor("the thawed node to find it lost its runs", limit: .seconds(120)) {
                second.process.stdout.contains("another node took the run over") || second.process.stderr.contains("another node took the run over")
            }
            try await withStore(db) { store in
                for id in runIDs {
                    #expect(try await store.run(id: id)?.state.status == .completed)
                }
                for id in frozenRuns {
                    let ship = try #require(try await store.attempts(runID: id).first { $0.key.stepName == "ship-order" })
                    #expect(ship.node != frozenID && ship.sends == 2 && ship.succeeded == true, "\(ship)")
                    // One outcome for the shipment: the thawed node's late answer was not stored.
                    let outcomes = try await store.events(runID: id).filter { $0.kind == .attemptSucceeded && $0.step == "ship-order" }
                    #expect(outcomes.count == 1)
                }
            }
            for kind in Participant.Kind.allCases {
                let perKey = await participants[kind].applicationsPerKey
                #expect(perKey.values.allSatisfy { $0 == 1 }, "\(kind) applied a key twice")
            }
            for node in [first, second] {
                node.terminate()
                #expect(await node.waitForExit() == 0)
            }
        }
    }
}

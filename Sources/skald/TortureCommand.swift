import ArgumentParser
import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import NIOHTTP1
import SkaldAPI
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldPostgres
import SkaldServer
import SkaldSQLite

/// `skald torture`: kills `skald serve` with SIGKILL at random moments while it runs a mixed workload, many
/// times over, then checks that nothing was lost, nothing was applied twice and nothing was undone out of order.
struct TortureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torture",
        abstract: "Kill skald serve at random moments under a mixed workload, then check every invariant.",
        discussion: """
            Each cycle starts skald serve on the same database, keeps starting runs (happy, flaky with 503 and \
            Retry-After, slow past their timeout, declined, compensations that fail until an operator retries or \
            resolves them, cancels mid-run, a step that never answers in time so its outcome is unknown, parallel \
            steps and a pivot, a callback step the participant completes from its own task, or fails, a step its when skips, and a 200 \
            that failWhen refuses or retryWhen retries), and SIGKILLs it after a random time \
            (uniform, so kills land during start-up recovery, group commits and everything else). After the last \
            cycle a server runs to the end, and the harness checks the participant's log and the database. \
            Prints one summary line; exits 1 on any violation.
            """,
        shouldDisplay: false)

    @Option(help: "How many times the server is killed.")
    var cycles = 20

    @Option(help: "Runs started in each cycle.")
    var runsPerCycle = 12

    @Option(help: "The longest a cycle runs before its kill (the kill lands uniformly in [0, this]).")
    var maxCycle = "2s"

    @Option(help: "The seed of the workload and of the kill times (default: random, printed).")
    var seed: UInt64?

    @Option(help: "The database: a SQLite file (default: a new one in a temporary folder) or an empty PostgreSQL database (postgres://...).")
    var db: String?

    @Flag(help: "Print each cycle.")
    var verbose = false

    func validate() throws {
        guard cycles >= 1, runsPerCycle >= 1 else { throw ValidationError("--cycles and --runs-per-cycle must be at least 1") }
        guard let cycle = DurationText.parse(maxCycle), cycle >= .milliseconds(50) else {
            throw ValidationError("--max-cycle must be a duration of at least 50ms, such as 2s")
        }
    }

    func run() async throws {
        let seed = seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        let initialRandom = SeededRandom(seed: seed)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("skald-torture-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let database = db ?? folder.appendingPathComponent("torture.sqlite").path
        let sagas = folder.appendingPathComponent("sagas")
        try FileManager.default.createDirectory(at: sagas, withIntermediateDirectories: true)
        for (name, text) in TortureSagas.all { try text.write(to: sagas.appendingPathComponent("\(name).json"), atomically: true, encoding: .utf8) }
        let maxCycle = DurationText.parse(maxCycle)!

        let participant = TortureParticipant()
        let summary = try await LoopbackServers.withRunning([participant.router()]) { ports in
            var random = initialRandom
            let environment = ProcessInfo.processInfo.environment.merging(["TORTURE_URL": "http://127.0.0.1:\(ports[0])"]) { $1 }
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            defer { _ = http.shutdown() }
            var driver = TortureDriver(
                http: http, participant: participant, database: database, sagas: sagas.path, folder: folder, environment: environment,
                verbose: verbose)
            var kills = 0
            for cycle in 1...cycles {
                let lifetime = Duration(secondsValue: random.unit() * maxCycle.seconds)
                let plans = (0..<runsPerCycle).map { _ in TortureDriver.Plan.random(&random) }
                try await driver.cycle(number: cycle, lifetime: lifetime, plans: plans)
                kills += 1
            }
            try await driver.finish()
            return try await driver.check(kills: kills, seed: seed)
        }
        print(summary.line)
        for violation in summary.violations.prefix(50) { print("  violation: \(violation)") }
        if summary.violations.isEmpty, db == nil { try? FileManager.default.removeItem(at: folder) }
        if !summary.violations.isEmpty {
            print("  (database and server logs kept in \(folder.path))")
            throw ExitCode(1)
        }
    }
}

/// A small deterministic generator (SplitMix64), so a seed reproduces a torture run's workload and kill times.
struct SeededRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
}

/// Runs the cycles against real `skald serve` processes and checks the result.
struct TortureDriver {
    struct Plan: Sendable {
        var saga: String
        var mode: String
        var fail: String

        static func random(_ random: inout SeededRandom) -> Plan {
            let saga = random.pick(["torture-chain", "torture-graph", "torture-callback", "torture-decide", "torture-items", "torture-nest"])
            if saga == "torture-nest" {
                // The child completes and the parent too; the child refuses (y); or the parent's last step refuses (c)
                // after the child completed, so the child must be reverted.
                let mode = random.pick(["happy", "decline", "decline"])
                return Plan(saga: saga, mode: mode, fail: mode == "decline" ? random.pick(["y", "c"]) : "")
            }
            if saga == "torture-items" {
                // Three items, two at a time: all applied, retried, or one refused (the others undone, each by its own key).
                let mode = random.pick(["happy", "flaky", "decline", "decline"])
                return Plan(saga: saga, mode: mode, fail: mode == "decline" ? random.pick(["items[0]", "items[1]", "items[2]"]) : "")
            }
            if saga == "torture-decide" {
                // b skipped by its when; c's 200 refused by failWhen, or pending (retryWhen) before it applies.
                let mode = random.pick(["happy", "skip", "refuse200", "pending"])
                return Plan(saga: saga, mode: mode, fail: ["refuse200", "pending"].contains(mode) ? "c" : "")
            }
            if saga == "torture-callback" {
                // Completed by the participant's callback, or failed by it.
                let mode = random.pick(["callback", "callback", "callbackfail"])
                return Plan(saga: saga, mode: mode, fail: mode == "callbackfail" ? "b" : "")
            }
            let mode = random.pick(["happy", "happy", "flaky", "slow", "decline", "failundo", "cancel", "hang"])
            let steps = saga == "torture-chain" ? ["b", "c"] : ["b1", "b2"]
            return Plan(saga: saga, mode: mode, fail: ["decline", "failundo", "hang"].contains(mode) ? random.pick(steps) : "")
        }
    }

    struct Summary {
        var line: String
        var violations: [String]
    }

    let http: HTTPClient
    let participant: TortureParticipant
    let database: String
    let sagas: String
    let folder: URL
    let environment: [String: String]
    let verbose: Bool
    /// Runs asked for so far, by idempotency key, with their plan; the id once the server answered.
    var started: [(key: String, plan: Plan, id: String?)] = []
    /// Runs whose cancel the server answered: accepted (200) or refused (409: finished, or past its pivot).
    var cancelled: Set<String> = []
    /// Runs whose cancel the server accepted: they must end compensated.
    var cancelAccepted: Set<String> = []
    var cycles = 0

    /// Starts a server, drives the workload until `lifetime` has passed, and kills the server with SIGKILL.
    mutating func cycle(number: Int, lifetime: Duration, plans: [Plan]) async throws {
        cycles = number
        for plan in plans { started.append(("torture-\(started.count + 1)", plan, nil)) }
        var server = try startServer()
        await drive(server: &server, until: ContinuousClock.now + lifetime)
        kill(server.child.pid, SIGKILL)
        participant.setServer(nil)
        _ = await server.child.waitForExit()
        if verbose { print("cycle \(number): killed after \(DurationText.format(lifetime)); \(started.filter { $0.id != nil }.count) runs known") }
    }

    /// A last server, never killed, until every run has ended; then stopped with SIGTERM.
    mutating func finish() async throws {
        var server = try startServer()
        let deadline = ContinuousClock.now + .seconds(300)
        while ContinuousClock.now < deadline {
            await drive(server: &server, until: ContinuousClock.now + .milliseconds(200))
            if let url = server.url, started.allSatisfy({ $0.id != nil }), await allEnded(url) { break }
        }
        kill(server.child.pid, SIGTERM)
        _ = await server.child.waitForExit()
    }

    struct Server {
        let child: ChildProcess
        var url: String?
    }

    func startServer() throws -> Server {
        let child = try ChildProcess(
            executable: BenchHarness.executable,
            ["serve", "--db", database, "--port", "0", "--sagas", sagas, "--concurrency", "64", "--shutdown-timeout", "2s"],
            environment: environment, directory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath), outputIn: folder)
        return Server(child: child, url: nil)
    }

    /// Until `deadline`: learns the server's address, starts the runs not yet started (same idempotency key
    /// each time, so a start the kill interrupted is not a second run), cancels the `cancel` runs, and gets
    /// runs out of compensation_failed the way an operator would (fix and retry, or resolve by hand).
    mutating func drive(server: inout Server, until deadline: ContinuousClock.Instant) async {
        while ContinuousClock.now < deadline {
            if server.url == nil {
                let out = server.child.stdout
                if let line = out.split(separator: "\n").first(where: { $0.contains("listening on ") }),
                    let url = line.components(separatedBy: "listening on ").last?.components(separatedBy: " ").first
                {
                    server.url = url
                    participant.setServer(url)
                } else {
                    try? await Task.sleep(for: .milliseconds(5))
                    continue
                }
            }
            let url = server.url!
            for index in started.indices where started[index].id == nil {
                guard ContinuousClock.now < deadline else { return }
                let entry = started[index]
                let input: JSONValue = ["mode": .string(entry.plan.mode), "fail": .string(entry.plan.fail), "items": [1, 2, 3]]
                let start = StartRunRequest(saga: entry.plan.saga, input: input, idempotencyKey: entry.key)
                if let (_, answer) = try? await call(url, .POST, "/v1/runs", start.json()), let run = try? RunView(json: answer) {
                    started[index].id = run.id
                }
            }
            for entry in started where entry.plan.mode == "cancel" && !cancelled.contains(entry.key) {
                guard let id = entry.id, ContinuousClock.now < deadline else { continue }
                do {
                    _ = try await call(url, .POST, "/v1/runs/\(id)/cancel", CancelRunRequest(reason: "torture").json())
                    cancelled.insert(entry.key)
                    cancelAccepted.insert(id)
                } catch let refused as TortureCallFailed where refused.status == 409 {
                    cancelled.insert(entry.key)  // it had already finished
                } catch {}
            }
            if let (_, answer) = try? await call(url, .GET, "/v1/runs?status=compensation_failed&limit=500", nil),
                let page = try? RunsPage(json: answer)
            {
                for run in page.runs {
                    guard let step = run.compensationFailure?.step else { continue }
                    let id = run.id
                    // Half are fixed and retried, half are resolved by hand (recorded first, as a person would act
                    // first); which by the run's place in the workload, so a seed reproduces it.
                    let place = started.firstIndex { $0.id == id } ?? 0
                    if place % 2 == 0 {
                        participant.fix(run: id)
                        _ = try? await call(url, .POST, "/v1/runs/\(id)/retry", RetryRunRequest(by: "torture", note: "fixed the undo service").json())
                    } else {
                        participant.resolveByHand(run: id, step: step)
                        _ = try? await call(url, .POST, "/v1/runs/\(id)/resolve", ResolveRunRequest(step: step, note: "undone by hand", by: "torture").json())
                    }
                }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    func allEnded(_ url: String) async -> Bool {
        for status in ["running", "compensating", "compensation_failed", "stuck"] {
            guard let (_, answer) = try? await call(url, .GET, "/v1/runs?status=\(status)&limit=1", nil), let page = try? RunsPage(json: answer),
                page.runs.isEmpty
            else { return false }
        }
        return true
    }

    func call(_ base: String, _ method: HTTPMethod, _ path: String, _ body: JSONValue?) async throws -> (Int, JSONValue) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if method == .POST {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: (body ?? [:]).jsonText))
        }
        let response = try await http.execute(request, timeout: .seconds(10))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else { throw TortureCallFailed(status: status) }
        return (status, (try? JSONParser.parse(String(buffer: buffer))) ?? .null)
    }

    // MARK: - Invariants

    func check(kills: Int, seed: UInt64) async throws -> Summary {
        var violations: [String] = []
        // The database the server wrote: a SQLite file, or a PostgreSQL database (--db postgres://...).
        let store = try await openDatabase(DatabaseSettings(location: database))
        defer { Task { await store.close() } }
        let actions = participant.actions
        let byRun = Dictionary(grouping: actions, by: \.run)
        var resends = 0

        // Nothing applied twice (a check of the participant's deduplication, which the others rely on).
        for (key, count) in Dictionary(grouping: actions, by: { "\($0.run):\($0.step):\($0.phase.rawValue)" }).mapValues(\.count) where count > 1 {
            violations.append("\(key) was applied \(count) times")
        }
        // Every action belongs to a run the workload started, and no run was started twice.
        // The child runs the workload's runs started, checked as runs of their own with their parent's plan; a
        // parent compensated must leave its child compensated (reverted or cancelled), a parent completed its child completed.
        var entries = started
        for entry in started {
            guard let id = entry.id, let run = try await store.run(id: id) else { continue }
            for step in run.state.steps where step.wait?.kind == .child {
                guard let childID = step.wait?.token else { continue }
                entries.append(("\(entry.key)/\(step.name)", Plan(saga: "torture-kid", mode: entry.plan.mode, fail: entry.plan.fail), childID))
                let child = try await store.run(id: childID)?.state.status
                if [.completed, .compensated].contains(run.state.status), child != run.state.status {
                    violations.append("run \(id) is \(run.state.status.rawValue) but its child run \(childID) is \(child?.rawValue ?? "missing")")
                }
            }
        }
        let known = Set(entries.compactMap(\.id))
        for run in Set(actions.map(\.run)) where !known.contains(run) {
            violations.append("the participant applied actions of run \(run), which the workload never started")
        }
        let stored = try await store.listRuns(RunQuery(limit: 1_000_000)).runs.count
        if stored != entries.count { violations.append("the database holds \(stored) runs for \(entries.count) started (children included)") }
        // Nothing was sent whose intent was not stored first: each key reached the participant at most as often
        // as the database says it was sent.
        let requests = participant.requestsPerKey

        for entry in entries {
            guard let id = entry.id else {
                violations.append("\(entry.key) was never started: no server ever answered its start")
                continue
            }
            guard let run = try await store.run(id: id) else {
                violations.append("run \(id) (\(entry.key)) is not in the database")
                continue
            }
            let status = run.state.status
            let graph = TortureSagas.graph[entry.plan.saga]!
            let applied = byRun[id] ?? []
            let attempts = try await store.attempts(runID: id)
            var sends: [String: Int] = [:]
            for attempt in attempts { sends[attempt.key.idempotencyKey, default: 0] += attempt.sends }
            for step in graph.steps {
                for phase in Phase.allCases {
                    let key = "\(id):\(step):\(phase.rawValue)"
                    if let received = requests[key], received > sends[key] ?? 0 {
                        violations.append("\(key) reached the participant \(received) times but was stored as sent \(sends[key] ?? 0) times")
                    }
                }
            }
            // The first time each was applied (a second time is reported above).
            let forward = Dictionary(applied.filter { $0.phase == .forward }.map { ($0.step, $0.sequence) }, uniquingKeysWith: min)
            let undone = Dictionary(applied.filter { $0.phase == .compensate }.map { ($0.step, $0.sequence) }, uniquingKeysWith: min)
            resends += attempts.reduce(0) { $0 + $1.sends - 1 }

            // Every run ended, and as its plan says it must.
            switch status {
            case .completed:
                if ["decline", "failundo", "hang", "callbackfail", "refuse200"].contains(entry.plan.mode) {
                    violations.append("run \(id) (\(entry.plan.mode) at \(entry.plan.fail)) completed")
                }
                // A step its condition skipped is never applied; every other one is.
                let skipped = Set(run.state.steps.filter { $0.status == .skipped }.map(\.name))
                if entry.plan.mode == "skip" && skipped != ["b"] || entry.plan.mode != "skip" && !skipped.isEmpty {
                    violations.append("run \(id) (\(entry.plan.mode)) completed with \(skipped.sorted()) skipped")
                }
                for step in graph.steps where forward[step] == nil && !skipped.contains(step) {
                    violations.append("run \(id) completed but \(step) was never applied")
                }
                for step in skipped where forward[step] != nil {
                    violations.append("run \(id): \(step) was skipped by its condition but applied")
                }
                if !undone.isEmpty { violations.append("run \(id) completed but \(undone.keys.sorted()) were undone") }
                if cancelAccepted.contains(id) { violations.append("run \(id) completed although its cancel was accepted") }
            case .compensated:
                if ["happy", "flaky", "slow", "callback", "skip", "pending"].contains(entry.plan.mode) {
                    violations.append("run \(id) (\(entry.plan.mode)) was compensated")
                }
                // A run that reached its pivot goes forward only.
                for step in graph.afterPivot where forward[step] != nil {
                    violations.append("run \(id) was compensated although \(step), at or after its pivot, was applied")
                }
                // Every step applied before the pivot was undone (or resolved by hand), after everything that depended on it.
                for (step, _) in forward where !graph.afterPivot.contains(step) {
                    let byHand = participant.resolvedByHand.contains("\(id):\(step)")
                    guard let at = undone[step] else {
                        if !byHand { violations.append("run \(id) was compensated but \(step) was applied and never undone") }
                        continue
                    }
                    if let done = forward[step], at < done { violations.append("run \(id): \(step) was undone before it was applied") }
                    for (other, dependencies) in graph.dependsOn where dependencies.contains(step) {
                        if let otherAt = undone[other], otherAt > at {
                            violations.append("run \(id): \(step) was undone before \(other), which depends on it")
                        }
                    }
                }
                for step in undone.keys where forward[step] == nil {
                    violations.append("run \(id): \(step) was undone but never applied")
                }
            default:
                violations.append("run \(id) (\(entry.plan.mode)) ended \(status.rawValue), not completed or compensated")
            }
            for step in undone.keys where graph.afterPivot.contains(step) {
                violations.append("run \(id): \(step), at or after the pivot, was undone")
            }

            // The history agrees with the final state.
            let events = try await store.events(runID: id)
            let ending = events.last { [.runCompleted, .runCompensated, .runCompensationFailed].contains($0.kind) }
            let expected: RunEvent.Kind? = status == .completed ? .runCompleted : status == .compensated ? .runCompensated : nil
            if ending?.kind != expected {
                violations.append("run \(id) is \(status.rawValue) but its history ends with \(ending?.kind.rawValue ?? "no ending")")
            }
            if entry.plan.mode == "hang", run.state.steps.first(where: { $0.name == entry.plan.fail })?.outcomeUnknown != true {
                violations.append("run \(id): \(entry.plan.fail) never answered in time, but its outcome is not stored as unknown")
            }
            // Every callback answered 200 was applied to its run.
            for step in graph.steps where participant.callbacksStored.contains("\(id):\(step)") {
                if !events.contains(where: { $0.kind == .callbackReceived && $0.step == step }) {
                    violations.append("run \(id): the callback for \(step) was answered 200 but never applied")
                }
            }
            // (A forEach step sends nothing itself: its items are checked as steps.)
            for step in run.state.steps where step.status == .succeeded && step.elements == nil && step.wait?.kind != .child && forward[step.name] == nil {
                violations.append("run \(id): \(step.name) is stored as succeeded but the participant never applied it")
            }
        }

        if !PostgresLocation.isURL(database) {
            let integrity = try await DatabaseQueue(path: database).read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            if integrity != ["ok"] { violations.append("PRAGMA integrity_check: \(integrity.joined(separator: "; "))") }
        }

        let line = "torture: cycles=\(cycles) runs=\(started.count) kills=\(kills) calls=\(participant.requestCount) resends=\(resends) callbacks=\(participant.callbacksStored.count) violations=\(violations.count) seed=\(seed)"
        return Summary(line: line, violations: violations)
    }
}

struct TortureCallFailed: Error {
    var status: Int
}

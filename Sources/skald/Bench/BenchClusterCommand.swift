import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import SkaldAPI
import SkaldCore
import SkaldDemo
import SkaldPostgres
import Synchronization

/// The multi-node benchmark: 1, 2 and 3 `skald serve` processes sharing one PostgreSQL database.
struct BenchClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-cluster",
        abstract: "The multi-node benchmark: skald serve nodes sharing a throwaway PostgreSQL database.",
        discussion: """
            Starts a PostgreSQL cluster of its own on 127.0.0.1 (Debian's postgresql package; fsync on), the \
            benchmark participant, and for each scenario and node count a fresh database and that many skald \
            serve processes (this binary). Runs are started through the nodes' APIs, round robin, 64 at a time; \
            a scenario ends when every run has finished. CPU is the nodes' own (user+sys), and separately the \
            PostgreSQL server's, per call the participant answered.
            Scenarios: happy (3 calls answered at once), hold (3 calls held 1 s each: not CPU-bound, shows how \
            runs spread), takeover (runs parked in their first call; one node is killed with SIGKILL and the \
            others take its runs over once its lease lapses), callback (runs whose middle step the participant \
            accepts with 202 and completes by a callback 0-500 ms later, posted to a node that does not drive the run; \
            measured with 2 nodes or more, and not run unless named), spread (3 calls held 1 s each, each node limited to \
            --spread-concurrency calls in flight: the participants, not the database, are the limit, and each node added \
            keeps that many more calls in flight; not run unless named).
            """)

    @Option(help: "Node counts to measure, separated by commas.") var nodes = "1,2,3"
    @Option(help: "Scenarios, separated by commas: happy, hold, takeover, callback, spread.") var scenarios = "happy,hold,takeover"
    @Option(help: "Runs in the happy scenario.") var runs = 3000
    @Option(help: "Runs in the hold scenario.") var heldRuns = 2000
    @Option(help: "Runs parked when a node is killed in the takeover scenario.") var takeoverRuns = 1000
    @Option(help: "Runs in the callback scenario.") var callbackRuns = 10000
    @Option(help: "Runs in the spread scenario.") var spreadRuns = 600
    @Option(help: "Each node's --concurrency (calls in flight) in the spread scenario.") var spreadConcurrency = 100
    @Option(help: "The nodes' --lease.") var lease = "5s"
    @Option(
        help: "Each node's --concurrency (calls in flight at once). The hold scenario needs 3 times its runs per second: 512 caps one node at about 170 runs/s.")
    var concurrency = 512
    @Option(
        help: "PostgreSQL's synchronous_commit: on (each commit waits for the disk, like SQLite's --durability full) or off (a commit survives a crash of Skald, like SQLite's default WAL at synchronous=NORMAL).")
    var synchronousCommit = "off"
    @Flag(help: "Print only one JSON line per measurement.") var json = false
    @Flag(
        help: "Count the statements each run costs with pg_stat_statements (Debian's postgresql-contrib), and show where the server's time goes.")
    var statements = false

    func run() async throws {
        let nodeCounts = nodes.split(separator: ",").compactMap { Int($0) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("skald-bench-cluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let harness = try await BenchHarness.start(folder: folder)
        defer { harness.stop() }
        guard ["on", "off"].contains(synchronousCommit) else { throw ValidationError("--synchronous-commit must be on or off") }
        let cluster = try await PostgresCluster.start(
            durable: true, synchronousCommit: synchronousCommit == "on", statementStatistics: statements)
        let sagas = folder.appendingPathComponent("sagas")
        try FileManager.default.createDirectory(at: sagas, withIntermediateDirectories: true)
        for shape in [BenchSaga.Shape.happy, .hold, .park, .callback] {
            let definition = BenchSaga.definition(participant: harness.participantURL, shape: shape)
            try definition.documentText.write(to: sagas.appendingPathComponent("bench-\(shape.rawValue).json"), atomically: true, encoding: .utf8)
        }
        let say: (String) -> Void = { text in
            if !json {
                print(text)
                fflush(nil)
            }
        }
        say("Skald multi-node benchmark: \(ProcessInfo.processInfo.activeProcessorCount) cores; PostgreSQL on 127.0.0.1 (fsync on, synchronous_commit \(synchronousCommit))")
        say("Each node: skald serve --concurrency \(concurrency) --lease \(lease). Everything (nodes, PostgreSQL, participant, load) shares this machine.")
        say("")
        var measured = 0
        do {
            for scenario in scenarios.split(separator: ",").map(String.init) {
                for count in nodeCounts {
                    if (scenario == "takeover" || scenario == "callback") && count < 2 { continue }
                    measured += 1
                    let database = try await cluster.createDatabase("bench_\(scenario)_\(count)_\(measured)")
                    let line = try await measure(scenario, nodes: count, database: database, sagas: sagas, harness: harness, folder: folder)
                    say(line.text)
                    if json { print(line.json.jsonText) }
                }
            }
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    struct Line {
        var text: String
        var json: JSONValue
    }

    func measure(_ scenario: String, nodes count: Int, database: String, sagas: URL, harness: BenchHarness, folder: URL) async throws -> Line {
        var nodes: [ServeNode] = []
        defer { for node in nodes { kill(node.process.pid, SIGKILL) } }
        for _ in 0..<count {
            nodes.append(
                try await ServeNode.start(
                    database: database, sagas: sagas, lease: lease, folder: folder, concurrency: scenario == "spread" ? spreadConcurrency : concurrency))
        }
        let store = try await PostgresStore.open(try PostgresLocation(url: database), maximumConnections: 4)
        do {
            let line = try await measure(scenario, nodes: nodes, store: store, database: database, harness: harness)
            await store.shutdown()
            return line
        } catch {
            await store.shutdown()
            throw error
        }
    }

    func measure(_ scenario: String, nodes: [ServeNode], store: PostgresStore, database: String, harness: BenchHarness) async throws -> Line {
        let client = harness.client
        let count = nodes.count
        let before = try await harness.participantStats().requests
        let cpuBefore = nodes.map(\.process.pid).map(CPU.milliseconds(of:)).reduce(0, +)
        let postgresBefore = CPU.postgres(database: database)
        if statements { try await store.resetStatementStatistics() }

        switch scenario {
        case "happy", "hold":
            let total = scenario == "happy" ? runs : heldRuns
            let started = ContinuousClock.now
            try await startRuns(total, saga: "bench-\(scenario)", through: nodes, client: client)
            try await waitUntilFinished(through: nodes[0], client: client)
            let elapsed = (ContinuousClock.now - started).seconds
            let calls = try await harness.participantStats().requests - before
            let cpu = nodes.map(\.process.pid).map(CPU.milliseconds(of:)).reduce(0, +) - cpuBefore
            let postgres = CPU.postgres(database: database) - postgresBefore
            let perNode = try await store.attemptsByNode().values.sorted(by: >)
            let share = perNode.map { String(format: "%.0f%%", 100 * Double($0) / Double(max(1, perNode.reduce(0, +)))) }.joined(separator: "/")
            let report = statements ? try await statementsReport(store, runs: total) : ""
            let text = String(
                format: "%@ %d node%@: %d runs in %.1f s = %.0f runs/s; CPU per call: nodes %.3f ms, PostgreSQL %.3f ms; calls per node %@",
                scenario, count, count == 1 ? "" : "s", total, elapsed, Double(total) / elapsed, cpu / Double(max(calls, 1)),
                postgres / Double(max(calls, 1)), share) + report
            return Line(
                text: text,
                json: [
                    "scenario": .string(scenario), "nodes": .int(Int64(count)), "runs": .int(Int64(total)), "seconds": .double(elapsed),
                    "runsPerSecond": .double(Double(total) / elapsed), "httpCalls": .int(Int64(calls)),
                    "nodeCpuMsPerCall": .double(cpu / Double(max(calls, 1))), "postgresCpuMsPerCall": .double(postgres / Double(max(calls, 1))),
                    "callsPerNode": .array(perNode.map { .int(Int64($0)) }),
                ])
        case "takeover":
            var park = HTTPClientRequest(url: harness.participantURL + "/control/park")
            park.method = .POST
            _ = try await client.execute(park, timeout: .seconds(30))
            try await startRuns(takeoverRuns, saga: "bench-park", through: nodes, client: client)
            let deadline = ContinuousClock.now + .seconds(600)
            while try await harness.participantStats().parked < takeoverRuns {
                guard ContinuousClock.now < deadline else { throw BenchError("the runs were not all parked in 10 minutes") }
                try await Task.sleep(for: .milliseconds(50))
            }
            let victim = nodes[0]
            let held = try await store.unfinishedRuns(ownedBy: victim.id)
            kill(victim.process.pid, SIGKILL)
            let killed = ContinuousClock.now
            _ = await victim.process.waitForExit()
            var release = HTTPClientRequest(url: harness.participantURL + "/control/release")
            release.method = .POST
            _ = try await client.execute(release, timeout: .seconds(30))
            while try await store.unfinishedRuns(ownedBy: victim.id) > 0 {
                guard ContinuousClock.now - killed < .seconds(600) else { throw BenchError("the killed node's runs were not taken over") }
                try await Task.sleep(for: .milliseconds(20))
            }
            let takenOver = (ContinuousClock.now - killed).seconds
            try await waitUntilFinished(through: nodes[1], client: client)
            let finished = (ContinuousClock.now - killed).seconds
            let text = String(
                format: "takeover %d nodes: %d runs parked; the killed node held %d; all taken over %.2f s after the kill (lease %@); every run finished %.1f s after it",
                count, takeoverRuns, held, takenOver, lease, finished)
            return Line(
                text: text,
                json: [
                    "scenario": "takeover", "nodes": .int(Int64(count)), "runs": .int(Int64(takeoverRuns)), "heldByKilledNode": .int(Int64(held)),
                    "takenOverSeconds": .double(takenOver), "finishedSeconds": .double(finished), "lease": .string(lease),
                ])
        case "callback":
            var via = HTTPClientRequest(url: harness.participantURL + "/control/callbacks")
            via.method = .POST
            via.body = .bytes(ByteBuffer(string: JSONValue.object(["via": .array(nodes.map { .string($0.url) })]).jsonText))
            _ = try await client.execute(via, timeout: .seconds(30))
            let started = ContinuousClock.now
            try await startRuns(callbackRuns, saga: "bench-callback", through: nodes, client: client)
            try await waitUntilFinished(through: nodes[0], client: client)
            let elapsed = (ContinuousClock.now - started).seconds
            let stats = try await participantStats(harness)
            let callbacks = Int(stats["callbacks"]?.intValue ?? 0)
            let (p50, p99) = (stats["callbackToNextP50Ms"]?.doubleValue ?? 0, stats["callbackToNextP99Ms"]?.doubleValue ?? 0)
            let calls = try await harness.participantStats().requests - before
            let cpu = nodes.map(\.process.pid).map(CPU.milliseconds(of:)).reduce(0, +) - cpuBefore
            let postgres = CPU.postgres(database: database) - postgresBefore
            let text = String(
                format: "callback %d nodes: %d runs in %.1f s = %.0f runs/s; %.0f callbacks/s stored (%d of %d to a node that does not drive the run, %d errors); callback 200 to next request p50 %.1f ms, p99 %.1f ms; CPU per call: nodes %.3f ms, PostgreSQL %.3f ms",
                count, callbackRuns, elapsed, Double(callbackRuns) / elapsed, Double(callbacks) / elapsed, Int(stats["callbacksRedirected"]?.intValue ?? 0),
                callbacks, Int(stats["callbackErrors"]?.intValue ?? 0), p50, p99, cpu / Double(max(calls, 1)), postgres / Double(max(calls, 1)))
            return Line(
                text: text,
                json: [
                    "scenario": "callback", "nodes": .int(Int64(count)), "runs": .int(Int64(callbackRuns)), "seconds": .double(elapsed),
                    "runsPerSecond": .double(Double(callbackRuns) / elapsed), "callbacks": .int(Int64(callbacks)),
                    "callbacksPerSecond": .double(Double(callbacks) / elapsed), "callbacksRedirected": stats["callbacksRedirected"] ?? 0,
                    "callbackErrors": stats["callbackErrors"] ?? 0, "callbackToNextP50Ms": .double(p50), "callbackToNextP99Ms": .double(p99),
                    "nodeCpuMsPerCall": .double(cpu / Double(max(calls, 1))), "postgresCpuMsPerCall": .double(postgres / Double(max(calls, 1))),
                ])
        case "spread":
            var reset = HTTPClientRequest(url: harness.participantURL + "/control/peak")
            reset.method = .POST
            _ = try await client.execute(reset, timeout: .seconds(30))
            let started = ContinuousClock.now
            try await startRuns(spreadRuns, saga: "bench-hold", through: nodes, client: client)
            try await waitUntilFinished(through: nodes[0], client: client)
            let elapsed = (ContinuousClock.now - started).seconds
            let stats = try await participantStats(harness)
            let peak = Int(stats["peakHolding"]?.intValue ?? 0)
            let perNode = try await store.attemptsByNode().values.sorted(by: >)
            let share = perNode.map { String(format: "%.0f%%", 100 * Double($0) / Double(max(1, perNode.reduce(0, +)))) }.joined(separator: "/")
            let text = String(
                format: "spread %d node%@ (each --concurrency %d): %d runs in %.1f s = %.0f runs/s; calls in flight at once: at most %d (%d per node); calls per node %@",
                count, count == 1 ? "" : "s", spreadConcurrency, spreadRuns, elapsed, Double(spreadRuns) / elapsed, peak, spreadConcurrency, share)
            return Line(
                text: text,
                json: [
                    "scenario": "spread", "nodes": .int(Int64(count)), "runs": .int(Int64(spreadRuns)), "seconds": .double(elapsed),
                    "runsPerSecond": .double(Double(spreadRuns) / elapsed), "concurrencyPerNode": .int(Int64(spreadConcurrency)),
                    "peakCallsInFlight": .int(Int64(peak)), "callsPerNode": .array(perNode.map { .int(Int64($0)) }),
                ])
        default:
            throw ValidationError("unknown scenario \(scenario); use happy, hold, takeover, callback or spread")
        }
    }

    /// What `pg_stat_statements` counted during a scenario: statements (round trips, BEGIN and COMMIT included) and
    /// the server's execution time per run, and the statements that took most of it.
    func statementsReport(_ store: PostgresStore, runs: Int) async throws -> String {
        let statistics = try await store.statementStatistics()
        let sent = Double(statistics.filter(\.topLevel).map(\.calls).reduce(0, +)) / Double(max(runs, 1))
        let nested = Double(statistics.filter { !$0.topLevel }.map(\.calls).reduce(0, +)) / Double(max(runs, 1))
        let time = statistics.map(\.totalMilliseconds).reduce(0, +)
        var lines = [
            String(
                format: "\n  statements per run: %.2f sent (round trips, BEGIN and COMMIT included), %.1f run inside them (foreign keys' checks); server execution time per run %.3f ms; the costliest:",
                sent, nested, time / Double(max(runs, 1)))
        ]
        for statistic in statistics.prefix(8) {
            let text = statistic.query.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            lines.append(
                String(
                    format: "  %4.1f%%  %5.2f per run  %6.1f µs each  %@%@", 100 * statistic.totalMilliseconds / max(time, 0.001),
                    Double(statistic.calls) / Double(max(runs, 1)), 1000 * statistic.totalMilliseconds / Double(max(statistic.calls, 1)),
                    statistic.topLevel ? "" : "(inside) ", String(text.prefix(90))))
        }
        return lines.joined(separator: "\n")
    }

    /// The participant's figures (`GET /control/stats`).
    func participantStats(_ harness: BenchHarness) async throws -> JSONValue {
        let response = try await harness.client.execute(HTTPClientRequest(url: harness.participantURL + "/control/stats"), timeout: .seconds(10))
        return try JSONParser.parse(String(buffer: try await response.body.collect(upTo: 4096)))
    }

    /// Starts `total` runs, 64 at a time, through the nodes' APIs in turn.
    func startRuns(_ total: Int, saga: String, through nodes: [ServeNode], client: HTTPClient) async throws {
        let next = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(64, total) {
                group.addTask {
                    while true {
                        let number = next.take()
                        guard number < total else { return }
                        var request = HTTPClientRequest(url: nodes[number % nodes.count].url + "/v1/runs")
                        request.method = .POST
                        request.headers.add(name: "Content-Type", value: "application/json")
                        let body = StartRunRequest(saga: saga, input: BenchSaga.input(number))
                        request.body = .bytes(ByteBuffer(string: body.json().jsonText))
                        let response = try await client.execute(request, timeout: .seconds(120))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        guard response.status == .created else { throw BenchError("starting a run answered \(response.status)") }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    func waitUntilFinished(through node: ServeNode, client: HTTPClient) async throws {
        let deadline = ContinuousClock.now + .seconds(1800)
        while ContinuousClock.now < deadline {
            var unfinished = false
            for status in ["running", "compensating"] {
                let response = try await client.execute(HTTPClientRequest(url: node.url + "/v1/runs?status=\(status)&limit=1"), timeout: .seconds(60))
                let body = try JSONParser.parse(String(buffer: try await response.body.collect(upTo: 1 << 20)))
                if try RunsPage(json: body).runs.isEmpty == false { unfinished = true }
            }
            if !unfinished { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("the runs did not finish in 30 minutes")
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)
    /// The next number, from 0.
    func take() -> Int {
        value.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}

/// A `skald serve` process of the benchmark.
struct ServeNode {
    var process: ChildProcess
    var url: String
    var id: String

    static func start(database: String, sagas: URL, lease: String, folder: URL, concurrency: Int = 512) async throws -> ServeNode {
        let process = try ChildProcess(
            executable: BenchHarness.executable,
            ["serve", "--db", database, "--port", "0", "--sagas", sagas.path, "--concurrency", "\(concurrency)", "--lease", lease],
            environment: ProcessInfo.processInfo.environment, directory: folder, outputIn: folder)
        let deadline = ContinuousClock.now + .seconds(60)
        while !process.stdout.contains("listening on ") {
            guard process.isRunning, ContinuousClock.now < deadline else {
                kill(process.pid, SIGKILL)
                throw BenchError("skald serve did not start: \(process.stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let line = process.stdout.split(separator: "\n").first { $0.contains("listening on ") } ?? ""
        let url = line.components(separatedBy: "listening on ").last?.components(separatedBy: " ").first ?? ""
        let id = line.components(separatedBy: ", node ").last?.components(separatedBy: CharacterSet(charactersIn: ",)")).first ?? ""
        return ServeNode(process: process, url: url, id: id)
    }
}

/// CPU time from /proc, in milliseconds.
enum CPU {
    static let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// User plus system time of a live process.
    static func milliseconds(of pid: pid_t) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state is field 3, utime field 14, stime field 15 (1-based, counting pid and name).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / ticks * 1000
    }

    /// The CPU of the PostgreSQL server processes serving `database` now (its backends).
    static func postgres(database: String) -> Double {
        let name = database.split(separator: "/").last.map(String.init) ?? ""
        var total = 0.0
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                let command = try? String(contentsOfFile: "/proc/\(entry)/cmdline", encoding: .utf8),
                command.hasPrefix("postgres: "), command.contains(" \(name) ")
            else { continue }
            total += milliseconds(of: pid)
        }
        return total
    }
}

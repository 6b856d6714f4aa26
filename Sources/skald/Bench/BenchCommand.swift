import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import SkaldCore
import SkaldDemo
import SkaldSQLite

/// `skald bench`: starts a fast participant in a process of its own, then runs each scenario in a fresh engine
/// process on a fresh SQLite file, and prints a table and one JSON line per scenario.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Skald on this machine: throughput, latency, CPU per step, memory, recovery time, database size.",
        discussion: """
            Every call goes to a participant on 127.0.0.1 that answers at once (or holds calls, in the in-flight and \
            recovery scenarios). Build with -c release for figures worth comparing: swift run -c release skald bench
            """)

    @Option(help: "Runs per scenario at concurrency 64 and 512 (concurrency 1 runs a tenth of them).")
    var runs: Int = 10_000

    @Option(name: .customLong("in-flight"), help: "Runs held in flight at once in the in-flight and recovery scenarios.")
    var inFlight: Int = 10_000

    @Option(
        help: "Comma-separated scenarios to run: happy, compensate, full, in-flight, recovery, retention, outage; and, when named, callback (runs whose middle step waits for a callback) and waiting (--waiting-runs runs parked on a sleep, then on a callback that never comes).")
    var scenarios: String = "happy,compensate,full,in-flight,recovery,retention,outage"

    @Option(name: .customLong("outage-seconds"), help: "The outage scenarios: how long the participant is down.")
    var outageSeconds: Int = 10

    @Option(name: .customLong("outage-after-ms"), help: "The outage scenarios: how long after the first run starts the outage begins (0: at the first call to the failing participant).")
    var outageAfterMs: Int = 3000

    @Option(name: .customLong("waiting-runs"), help: "The waiting scenario: how many runs wait at once.")
    var waitingRuns = 100_000

    @Option(help: "A folder to keep the benchmark databases in (default: a temporary folder, removed afterwards).")
    var keep: String?

    @Flag(help: "Print only the JSON lines.")
    var json = false

    func validate() throws {
        guard runs >= 10 else { throw ValidationError("--runs must be at least 10") }
        guard inFlight >= 1 else { throw ValidationError("--in-flight must be at least 1") }
        let known: Set = ["happy", "compensate", "full", "in-flight", "recovery", "retention", "outage", "callback", "waiting"]
        for name in scenarioList where !known.contains(name) {
            throw ValidationError("unknown scenario \"\(name)\"; the scenarios are \(known.sorted().joined(separator: ", "))")
        }
    }

    var scenarioList: [String] { scenarios.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    func run() async throws {
        let folder = keep.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("skald-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(at: folder) } }
        let descriptors = FileDescriptors.raiseLimit()
        var report = BenchReport(jsonOnly: json)
        report.header(machine: Machine.describe(), descriptors: descriptors)

        let bench = try await BenchHarness.start(folder: folder)
        defer { bench.stop() }
        let wanted = Set(scenarioList)
        if wanted.contains("happy") {
            for concurrency in [1, 64, 512] {
                let count = concurrency == 1 ? max(runs / 10, 10) : runs
                let skald = try await bench.scenario("happy", concurrency: concurrency, runs: count)
                report.row(skald)
                let bare = try await bench.scenario("bare", concurrency: concurrency, runs: count)
                report.row(bare, comparedWith: skald)
            }
        }
        if wanted.contains("compensate") {
            report.row(try await bench.scenario("compensate", concurrency: 64, runs: runs))
        }
        if wanted.contains("full") {
            report.row(try await bench.scenario("happy", concurrency: 64, runs: runs, durability: "full"))
        }
        if wanted.contains("in-flight") {
            let skald = try await bench.scenario("hold", concurrency: inFlight, runs: inFlight)
            report.row(skald)
            report.row(try await bench.scenario("bare-hold", concurrency: inFlight, runs: inFlight), comparedWith: skald)
        }
        if wanted.contains("recovery") {
            report.row(try await bench.recovery(runs: inFlight))
        }
        if wanted.contains("retention") {
            report.row(try await bench.scenario("retention", concurrency: 64, runs: runs))
        }
        if wanted.contains("outage") {
            // The same load and outage without and with a circuit breaker on the failing participant.
            let outage = ["--outage-seconds", "\(outageSeconds)", "--outage-after-ms", "\(outageAfterMs)"]
            report.row(try await bench.scenario("outage", concurrency: 512, runs: runs, extra: outage))
            report.row(try await bench.scenario("outage-breaker", concurrency: 512, runs: runs, extra: outage))
        }
        if wanted.contains("callback") {
            report.row(try await bench.scenario("callback", concurrency: 512, runs: runs))
        }
        if wanted.contains("waiting") {
            report.row(try await bench.scenario("waiting", concurrency: 64, runs: waitingRuns))
            report.row(try await bench.scenario("waiting-callback", concurrency: 64, runs: waitingRuns))
        }
        report.footer()
        report.printJSONLines()
    }
}

/// The participant process and the scenario processes.
final class BenchHarness: Sendable {
    let folder: URL
    let participant: ChildProcess
    let participantURL: String
    let client: HTTPClient
    static let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path

    private init(folder: URL, participant: ChildProcess, participantURL: String) {
        self.folder = folder
        self.participant = participant
        self.participantURL = participantURL
        self.client = HTTPClient(eventLoopGroupProvider: .singleton)
    }

    static func start(folder: URL) async throws -> BenchHarness {
        let participant = try ChildProcess(
            executable: executable, ["bench-participant"], environment: ProcessInfo.processInfo.environment,
            directory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath), outputIn: folder)
        let deadline = ContinuousClock.now + .seconds(30)
        while !participant.stdout.contains("listening on ") {
            guard participant.isRunning, ContinuousClock.now < deadline else {
                throw BenchError("the benchmark participant did not start: \(participant.stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let port = participant.stdout.components(separatedBy: "listening on ").last!.trimmingCharacters(in: .whitespacesAndNewlines)
        return BenchHarness(folder: folder, participant: participant, participantURL: "http://127.0.0.1:\(port)")
    }

    func stop() {
        kill(participant.pid, SIGKILL)
        try? client.syncShutdown()
    }

    /// `{"requests": N, "parked": N}` from the participant.
    func participantStats() async throws -> (requests: Int, parked: Int) {
        let response = try await client.execute(HTTPClientRequest(url: participantURL + "/control/stats"), timeout: .seconds(10))
        let body = try JSONParser.parse(String(buffer: try await response.body.collect(upTo: 4096)))
        return (Int(body["requests"]?.intValue ?? 0), Int(body["parked"]?.intValue ?? 0))
    }

    func scenario(_ name: String, concurrency: Int, runs: Int, durability: String = "process", extra: [String] = []) async throws
        -> BenchResult
    {
        let database = folder.appendingPathComponent("\(name)-c\(concurrency)-\(durability)-\(UUID().uuidString.prefix(8)).sqlite").path
        let before = try await participantStats().requests
        let figures = try await engineProcess(
            ["--scenario", name, "--concurrency", "\(concurrency)", "--runs", "\(runs)", "--durability", durability, "--db", database] + extra)
        let calls = try await participantStats().requests - before
        return BenchResult(scenario: name, concurrency: concurrency, durability: durability, figures: figures, httpCalls: calls)
    }

    /// Leaves `runs` runs in flight and kills their engine with SIGKILL, then measures a new engine picking them up.
    func recovery(runs: Int) async throws -> BenchResult {
        let database = folder.appendingPathComponent("recovery-\(UUID().uuidString.prefix(8)).sqlite").path
        let before = try await participantStats().requests
        let loader = try ChildProcess(
            executable: Self.executable,
            ["bench-engine", "--scenario", "park", "--participant", participantURL, "--concurrency", "\(runs)", "--runs", "\(runs)", "--db", database],
            environment: ProcessInfo.processInfo.environment, directory: folder, outputIn: folder)
        let deadline = ContinuousClock.now + .seconds(600)
        while try await participantStats().parked < runs {
            guard loader.isRunning, ContinuousClock.now < deadline else {
                kill(loader.pid, SIGKILL)
                throw BenchError("the recovery scenario could not put \(runs) runs in flight: \(loader.stderr)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(loader.pid, SIGKILL)
        _ = await loader.waitForExit()
        var release = HTTPClientRequest(url: participantURL + "/control/release")
        release.method = .POST
        _ = try await client.execute(release, timeout: .seconds(30))
        let figures = try await engineProcess(["--scenario", "recover", "--concurrency", "\(runs)", "--runs", "\(runs)", "--db", database])
        let calls = try await participantStats().requests - before
        return BenchResult(scenario: "recover", concurrency: runs, durability: "process", figures: figures, httpCalls: calls)
    }

    private func engineProcess(_ arguments: [String]) async throws -> JSONValue {
        let process = try ChildProcess(
            executable: Self.executable, ["bench-engine", "--participant", participantURL] + arguments,
            environment: ProcessInfo.processInfo.environment, directory: folder, outputIn: folder)
        let exit = await process.waitForExit()
        let line = process.stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard exit.status == 0, !exit.signalled, let figures = try? JSONParser.parse(line) else {
            throw BenchError("the scenario \(arguments.joined(separator: " ")) failed (exit \(exit.status)): \(process.stderr)\(process.stdout)")
        }
        return figures
    }
}

struct BenchResult {
    var scenario: String
    var concurrency: Int
    var durability: String
    var figures: JSONValue
    var httpCalls: Int

    var cpuMillisecondsPerStep: Double? {
        guard let cpu = figures["cpuMs"]?.doubleValue, httpCalls > 0 else { return nil }
        return cpu / Double(httpCalls)
    }

    var runsPerSecond: Double? { figures["runsPerSecond"]?.doubleValue }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The table and the JSON lines.
struct BenchReport {
    let jsonOnly: Bool
    private var lines: [JSONValue] = []

    init(jsonOnly: Bool) { self.jsonOnly = jsonOnly }

    func say(_ text: String) {
        guard !jsonOnly else { return }
        print(text)
        fflush(nil)
    }

    func header(machine: String, descriptors: Int) {
        say("Skald benchmark: \(machine)")
        say("Store: a fresh SQLite file per scenario, WAL; synchronous=NORMAL (--durability process: a commit survives kill -9)")
        say("       except the 'full' row: synchronous=FULL (--durability full: a commit also survives power loss).")
        say("Participant: a separate process on 127.0.0.1 answering at once. Open-file limit: \(descriptors).")
        say("")
        say(Self.columns(["scenario", "conc", "runs", "runs/s", "p50 ms", "p99 ms", "CPU ms/step", "HTTP calls", "notes"]))
    }

    static func columns(_ cells: [String]) -> String {
        let widths = [16, 6, 7, 9, 8, 9, 12, 11, 0]
        return zip(cells, widths).enumerated().map { index, pair in
            index == 0 || index == 8 ? pair.0.padding(toLength: max(pair.1, pair.0.count), withPad: " ", startingAt: 0) : pair.0.leftPadded(pair.1)
        }.joined(separator: " ")
    }

    mutating func row(_ result: BenchResult, comparedWith skald: BenchResult? = nil) {
        let figures = result.figures
        func number(_ key: String, _ digits: Int = 1) -> String {
            figures[key]?.doubleValue.map { String(format: "%.\(digits)f", $0) } ?? "-"
        }
        var notes: [String] = []
        var name = result.scenario
        var json: [String: JSONValue] = [
            "scenario": .string(result.scenario), "concurrency": .int(Int64(result.concurrency)),
            "durability": .string(result.durability), "httpCalls": .int(Int64(result.httpCalls)),
        ]
        if let cpu = result.cpuMillisecondsPerStep { json["cpuMsPerStep"] = .double(cpu) }
        for (key, value) in figures.objectValue ?? [:] { json[key] = value }
        switch result.scenario {
        case "happy" where result.durability == "full":
            name = "happy (full)"
        case "bare", "bare-hold":
            if let skald = skald?.runsPerSecond, let bare = result.runsPerSecond, bare > 0 {
                notes.append(String(format: "skald/bare %.2f", skald / bare))
                json["skaldOverBare"] = .double(skald / bare)
            }
        case "hold":
            name = "in-flight"
            notes.append(String(format: "all %d held 1 s per call: finished in %.1f s", result.concurrency, figures["seconds"]?.doubleValue ?? 0))
        case "recover":
            name = "recovery"
            notes.append(
                String(
                    format: "%d interrupted runs: all claimed and re-sent in %.2f s, all finished in %.2f s",
                    result.concurrency, figures["claimSeconds"]?.doubleValue ?? 0, figures["seconds"]?.doubleValue ?? 0))
        case "outage", "outage-breaker":
            notes.append(
                String(
                    format: "%d runs started at %d/s; a participant down %d s from %.1f s in: %d calls got its 503s, the last run finished %.1f s after it recovered; %d lost",
                    figures["runs"]?.intValue ?? 0, figures["rate"]?.intValue ?? 0, figures["outageSeconds"]?.intValue ?? 0,
                    Double(figures["outageAfterMs"]?.intValue ?? 0) / 1000,
                    figures["outageCalls"]?.intValue ?? 0, figures["drainSeconds"]?.doubleValue ?? 0, figures["lost"]?.intValue ?? 0))
        case "callback":
            notes.append(
                String(
                    format: "%.0f callbacks/s stored; callback 200 to next request p50 %.1f ms, p99 %.1f ms; %d callback errors",
                    figures["callbacksPerSecond"]?.doubleValue ?? 0, figures["callbackToNextP50Ms"]?.doubleValue ?? 0,
                    figures["callbackToNextP99Ms"]?.doubleValue ?? 0, figures["callbackErrors"]?.intValue ?? 0))
        case "waiting", "waiting-callback":
            notes.append(
                String(
                    format: "%d runs waiting (%@), %d in memory: +%@ resident, %.0f ms CPU per 10 s idle; parked in %.1f s",
                    figures["waiting"]?.intValue ?? 0, result.scenario == "waiting" ? "a sleep" : "a callback", figures["heldInMemory"]?.intValue ?? 0,
                    Self.megabytes(Int(figures["addedRssBytes"]?.intValue ?? 0)), figures["idleCpuMsPer10s"]?.doubleValue ?? 0,
                    figures["secondsToPark"]?.doubleValue ?? 0))
        case "retention":
            let sizes = figures["dbBytesAfterRound"]?.arrayValue?.compactMap(\.intValue).map { Self.megabytes(Int($0)) } ?? []
            notes.append("db after each round of runs + prune: \(sizes.joined(separator: ", "))")
        default:
            break
        }
        if let perCommit = figures["transitionsPerCommit"]?.doubleValue {
            notes.append(String(format: "%.1f transitions/commit", perCommit))
        }
        if let bytes = figures["dbBytes"]?.intValue, let runs = figures["runs"]?.intValue, runs > 0 {
            notes.append("\(bytes / runs) db bytes/run")
            json["dbBytesPerRun"] = .int(bytes / runs)
        }
        if result.scenario == "bare-hold" {
            notes.append(String(format: "the same held calls from AsyncHTTPClient alone: finished in %.1f s", figures["seconds"]?.doubleValue ?? 0))
        }
        if let peak = figures["peakRssBytes"]?.intValue, ["hold", "bare-hold", "recover"].contains(result.scenario) {
            notes.append("peak RSS \(Self.megabytes(Int(peak)))")
        }
        lines.append(.object(json))
        let isClosedLoop = figures["runsPerSecond"] != nil
        say(
            Self.columns([
                name, "\(result.concurrency)", "\(figures["runs"]?.intValue ?? 0)", isClosedLoop ? number("runsPerSecond", 0) : "-",
                isClosedLoop ? number("p50Ms", 2) : "-", isClosedLoop ? number("p99Ms", 2) : "-",
                result.cpuMillisecondsPerStep.map { String(format: "%.3f", $0) } ?? "-", "\(result.httpCalls)", notes.joined(separator: "; "),
            ]))
    }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }

    func footer() {
        say("")
        say("runs/s: runs finished per second, each worker starting its next run when one ends (closed loop, 'conc' workers).")
        say("p50/p99: time from start to the run's final state. CPU ms/step: user+sys CPU of the engine process / HTTP calls.")
        say("bare: the same HTTP calls from a plain AsyncHTTPClient loop, no store and no engine; skald/bare is the cost of durability.")
    }

    func printJSONLines() {
        if !jsonOnly { print("") }
        for line in lines { print(line.jsonText) }
        fflush(nil)
    }
}

enum Machine {
    static func describe() -> String {
        let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuInfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown CPU"
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(model)), SQLite \(SQLiteStore.sqliteVersion)"
    }
}

enum FileDescriptors {
    /// Raises the soft limit on open files to the hard limit (the in-flight scenarios hold a socket per run) and returns it.
    static func raiseLimit() -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return Int(limit.rlim_cur)
    }
}

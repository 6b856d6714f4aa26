import ArgumentParser
import AsyncHTTPClient
import Foundation
import Glibc
import Logging
import NIOCore
import SkaldCore
import SkaldEngine
import SkaldHTTP
import SkaldSQLite
import SkaldServer
import SkaldDemo
import Synchronization

/// One benchmark scenario in a process of its own, so its CPU time and peak memory are its own.
/// `skald bench` starts it; it prints one JSON line with what it measured.
struct BenchEngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-engine", abstract: "One benchmark scenario (started by skald bench).", shouldDisplay: false)

    @Option var scenario: String
    @Option var participant: String
    @Option var db: String
    @Option var runs: Int
    @Option var concurrency: Int
    @Option var durability: String = "process"
    @Option var holdMs: Int = 1000
    @Option var rounds: Int = 3
    /// The engine's limit on attempts in flight (and connections); default: `concurrency`.
    @Option var attempts: Int?
    /// The outage scenarios: runs started per second, and the participant's outage.
    @Option var rate: Int = 500
    @Option var outageAfterMs: Int = 3000
    @Option var outageSeconds: Int = 10

    func run() async throws {
        var logger = Logger(label: "skald.bench")
        logger.logLevel = .error
        let result: JSONValue
        switch scenario {
        case "bare":
            result = try await Self.bare(participant: participant, runs: runs, concurrency: concurrency, holdMilliseconds: nil)
        case "bare-hold":
            result = try await Self.bare(participant: participant, runs: runs, concurrency: concurrency, holdMilliseconds: holdMs)
        case "happy", "compensate", "hold":
            let shape = BenchSaga.Shape(rawValue: scenario)!
            result = try await withEngine(logger: logger) { engine, store, tracker in
                let definition = BenchSaga.definition(participant: participant, shape: shape, holdMilliseconds: holdMs)
                var figures = try await Self.closedLoop(
                    engine: engine, tracker: tracker, definition: definition, runs: runs, concurrency: concurrency)
                figures["dbBytes"] = .int(Int64(try store.checkpointedSize()))
                let commits = store.commitStatistics
                figures["transitionsPerCommit"] = .double(Double(commits.transitions) / Double(max(commits.transactions, 1)))
                return JSONValue.object(figures)
            }
        case "park":
            // Starts runs whose first call the participant holds; skald bench kills this process once all are held.
            _ = try await withEngine(logger: logger) { engine, _, _ in
                let definition = BenchSaga.definition(participant: participant, shape: .park)
                for number in 0..<runs { try await engine.startRun(definition, input: BenchSaga.input(number)) }
                print("started", runs)
                fflush(nil)
                try await Task.sleep(for: .seconds(3600))
                return ()
            }
            return
        case "callback":
            result = try await callback(logger: logger)
        case "waiting", "waiting-callback":
            result = try await waiting(logger: logger, shape: scenario == "waiting" ? .sleeping : .callbackNever)
        case "outage", "outage-breaker":
            result = try await outage(logger: logger, shape: BenchSaga.Shape(rawValue: scenario)!)
        case "recover":
            result = try await recover(logger: logger)
        case "retention":
            result = try await retention(logger: logger)
        default:
            throw ValidationError("unknown scenario \(scenario)")
        }
        print(result.jsonText)
        fflush(nil)
    }

    /// Opens a store and an engine serving in the background, runs `body`, then drains the engine.
    func withEngine<T: Sendable>(
        logger: Logger, parking: ParkingPolicy = ParkingPolicy(), _ body: @Sendable (Engine, SQLiteStore, RunTracker) async throws -> T
    ) async throws -> T {
        let store = try SQLiteStore(path: db, durability: Durability(rawValue: durability) ?? .process)
        let attempts = attempts ?? concurrency
        let client = StepHTTPClients(concurrency: attempts)
        let tracker = RunTracker()
        let engine = Engine(
            store: store, executor: HTTPStepExecutor(clients: client),
            configuration: EngineConfiguration(
                concurrency: attempts, parking: parking, onEvents: { run, events in tracker.observe(run.id, events) }),
            logger: logger)
        let result = try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await engine.run()
                return nil
            }
            let result = try await body(engine, store, tracker)
            engine.drain()
            for try await _ in group {}
            return result
        }
        try await client.shutdown()
        return result
    }

    /// The participant's counters (`GET /control/stats`).
    func participantStats() async throws -> JSONValue {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: participant + "/control/stats"), timeout: .seconds(10))
        return try JSONParser.parse(String(buffer: try await response.body.collect(upTo: 4096)))
    }

    /// Runs whose middle step is completed by a callback the participant posts 0–500 ms after accepting it, to Skald's
    /// API served here (as `skald serve` serves it): callbacks stored per second, runs per second, and the time from a
    /// callback's 200 to the run's next request, as the participant measured it.
    func callback(logger: Logger) async throws -> JSONValue {
        try await withEngine(logger: logger) { engine, store, tracker in
            try await LoopbackServers.withRunning([buildRouter(engine: engine, store: store)]) { ports in
                engine.setPublicURL("http://127.0.0.1:\(ports[0])")
                let before = try await participantStats()
                let definition = BenchSaga.definition(participant: participant, shape: .callback)
                var figures = try await Self.closedLoop(engine: engine, tracker: tracker, definition: definition, runs: runs, concurrency: concurrency)
                let after = try await participantStats()
                let callbacks = (after["callbacks"]?.intValue ?? 0) - (before["callbacks"]?.intValue ?? 0)
                let seconds = figures["seconds"]?.doubleValue ?? 1
                figures["callbacks"] = .int(callbacks)
                figures["callbacksPerSecond"] = .double(Double(callbacks) / seconds)
                figures["callbackErrors"] = after["callbackErrors"] ?? 0
                figures["callbackToNextP50Ms"] = after["callbackToNextP50Ms"] ?? 0
                figures["callbackToNextP99Ms"] = after["callbackToNextP99Ms"] ?? 0
                return JSONValue.object(figures)
            }
        }
    }

    /// Starts `runs` runs whose middle step waits an hour (a sleep, or a callback that never comes), waits until every
    /// one waits parked, and measures the resident memory they add and the CPU the engine uses while they wait.
    func waiting(logger: Logger, shape: BenchSaga.Shape) async throws -> JSONValue {
        try await withEngine(logger: logger, parking: ParkingPolicy(after: .seconds(1))) { engine, store, _ in
            try await LoopbackServers.withRunning([buildRouter(engine: engine, store: store)]) { ports in
                engine.setPublicURL("http://127.0.0.1:\(ports[0])")
                let definition = BenchSaga.definition(participant: participant, shape: shape)
                // One run first, so the baseline has every part of the engine warmed up.
                _ = try await engine.startRun(definition, input: BenchSaga.input(0))
                while try await store.waitingSteps().values.reduce(0, +) < 1 { try await Task.sleep(for: .milliseconds(50)) }
                let baseline = ResourceUsage.residentBytes()
                let started = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<concurrency {
                        group.addTask {
                            var number = 1 + worker
                            while number < runs {
                                // Started about as fast as they park, so that what is measured is what waiting runs
                                // hold, not the high-water mark of a burst of runs being driven at once (the
                                // allocator keeps that).
                                while engine.runsInMemory > 256 { try await Task.sleep(for: .milliseconds(2)) }
                                _ = try await engine.startRun(definition, input: BenchSaga.input(number))
                                number += concurrency
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                var waiting = 0
                while true {
                    waiting = try await store.waitingSteps().values.reduce(0, +)
                    if waiting >= runs && engine.runsInMemory == 0 { break }
                    try await Task.sleep(for: .milliseconds(200))
                }
                let settled = (ContinuousClock.now - started).seconds
                let resident = ResourceUsage.residentBytes()
                // Idle: what the engine does while every run waits as a row.
                let usage = ResourceUsage.now()
                try await Task.sleep(for: .seconds(10))
                let idle = ResourceUsage.now() - usage
                return JSONValue.object([
                    "runs": .int(Int64(runs)), "waiting": .int(Int64(waiting)), "heldInMemory": .int(Int64(engine.runsInMemory)),
                    "secondsToPark": .double(settled), "baselineRssBytes": .int(Int64(baseline)), "rssBytes": .int(Int64(resident)),
                    "addedRssBytes": .int(Int64(resident) - Int64(baseline)), "idleCpuMsPer10s": .double(idle.cpuMilliseconds),
                    "dbBytes": .int(Int64(try store.checkpointedSize())),
                ])
            }
        }
    }

    /// `runs` runs, `concurrency` at a time: each worker starts a run, waits for its end, and starts the next.
    static func closedLoop(engine: Engine, tracker: RunTracker, definition: SagaDefinition, runs: Int, concurrency: Int) async throws
        -> [String: JSONValue]
    {
        try await measure(runs: runs, concurrency: concurrency) { _, number in
            let runID = try await engine.startRun(definition, input: BenchSaga.input(number))
            await tracker.waitForEnd(of: runID)
        }
    }

    /// Runs `one` for each of `runs` numbers, `concurrency` workers at a time, and measures it: throughput,
    /// latency percentiles, CPU time and peak memory.
    static func measure(
        runs: Int, concurrency: Int, _ one: @escaping @Sendable (_ worker: Int, _ number: Int) async throws -> Void
    ) async throws -> [String: JSONValue] {
        let usage = ResourceUsage.now()
        let started = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    var number = worker
                    while number < runs {
                        let begin = ContinuousClock.now
                        try await one(worker, number)
                        latencies.append((ContinuousClock.now - begin).milliseconds)
                        number += concurrency
                    }
                    return latencies
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all
        }
        let seconds = (ContinuousClock.now - started).seconds
        let cpu = ResourceUsage.now() - usage
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
        }
        return [
            "runs": .int(Int64(latencies.count)), "seconds": .double(seconds),
            "runsPerSecond": .double(Double(latencies.count) / seconds),
            "p50Ms": .double(percentile(0.50)), "p99Ms": .double(percentile(0.99)),
            "cpuMs": .double(cpu.cpuMilliseconds), "peakRssBytes": .int(Int64(ResourceUsage.peakResidentBytes())),
        ]
    }

    /// The same calls as the happy saga, made by a plain AsyncHTTPClient loop: no store, no engine.
    static func bare(participant: String, runs: Int, concurrency: Int, holdMilliseconds: Int?) async throws -> JSONValue {
        let clients = StepHTTPClients(concurrency: concurrency)
        let figures = try await measure(runs: runs, concurrency: concurrency) { worker, number in
            let client = clients.clients[worker % clients.clients.count]
            var previous: String?
            for name in ["reserve", "charge", "ship"] {
                let path = holdMilliseconds.map { "hold/\(name)?ms=\($0)" } ?? "ok/\(name)"
                var request = HTTPClientRequest(url: "\(participant)/\(path)")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Idempotency-Key", value: "bare-\(number):\(name):forward")
                var body: [String: JSONValue] = ["order": .string("order-\(number)"), "amount": .int(1999)]
                if let previous { body["after"] = .string(previous) }
                request.body = .bytes(ByteBuffer(string: JSONValue.object(body).jsonText))
                let response = try await client.execute(request, timeout: .seconds(60))
                let bytes = try await response.body.collect(upTo: 1 << 20)
                previous = try JSONParser.parse(String(buffer: bytes))["id"]?.stringValue
            }
        }
        try await clients.shutdown()
        return .object(figures)
    }

    /// Starts `runs` runs at `rate` a second while the participant of their second step has an outage of
    /// `outageSeconds`, and measures what the participant got during the outage, how long after it the last run
    /// finished, and whether every run completed.
    func outage(logger: Logger, shape: BenchSaga.Shape) async throws -> JSONValue {
        let http = HTTPClient.shared
        func stats() async throws -> JSONValue {
            let response = try await http.execute(HTTPClientRequest(url: participant + "/control/stats"), timeout: .seconds(10))
            return try JSONParser.parse(String(buffer: try await response.body.collect(upTo: 4096)))
        }
        let usage = ResourceUsage.now()
        let started = ContinuousClock.now
        let before = try await stats()["requests"]?.intValue ?? 0
        var control = HTTPClientRequest(url: participant + "/control/outage?after=\(outageAfterMs)&seconds=\(outageSeconds)")
        control.method = .POST
        _ = try await http.execute(control, timeout: .seconds(10))
        let counts = try await withEngine(logger: logger) { engine, store, tracker in
            let definition = BenchSaga.definition(participant: participant, shape: shape)
            let batch = max(1, rate / 20)
            var number = 0
            while number < runs {
                let tick = ContinuousClock.now
                for _ in 0..<min(batch, runs - number) {
                    try await engine.startRun(definition, input: BenchSaga.input(number))
                    number += 1
                }
                try await Task.sleep(until: tick + .milliseconds(50))
            }
            await tracker.waitForEnds(count: runs)
            return try await store.runCounts()
        }
        let finishedAt = Date().timeIntervalSince1970
        let after = try await stats()
        return [
            "runs": .int(Int64(runs)), "completed": .int(Int64(counts[.completed] ?? 0)),
            "lost": .int(Int64(runs - (counts[.completed] ?? 0))), "seconds": .double((ContinuousClock.now - started).seconds),
            "outageCalls": after["outageCalls"] ?? .null, "outageSeconds": .int(Int64(outageSeconds)),
            "outageAfterMs": .int(Int64(outageAfterMs)),
            "drainSeconds": .double(finishedAt - (after["outageEndsAt"]?.doubleValue ?? finishedAt)),
            "calls": .int((after["requests"]?.intValue ?? 0) - before), "rate": .int(Int64(rate)),
            "cpuMs": .double((ResourceUsage.now() - usage).cpuMilliseconds),
        ]
    }

    /// Opens a database left with `runs` interrupted runs and measures how long until every interrupted attempt
    /// has been claimed and sent again, and until every run has finished.
    func recover(logger: Logger) async throws -> JSONValue {
        let usage = ResourceUsage.now()
        let started = ContinuousClock.now
        let claimed = Mutex<Duration?>(nil)
        try await withEngine(logger: logger) { _, _, tracker in
            await tracker.waitForResends(count: runs)
            claimed.withLock { $0 = ContinuousClock.now - started }
            await tracker.waitForEnds(count: runs)
        }
        let finished = ContinuousClock.now - started
        return [
            "runs": .int(Int64(runs)), "claimSeconds": .double(claimed.withLock { $0 }?.seconds ?? 0),
            "seconds": .double(finished.seconds), "cpuMs": .double((ResourceUsage.now() - usage).cpuMilliseconds),
            "peakRssBytes": .int(Int64(ResourceUsage.peakResidentBytes())),
        ]
    }

    /// Rounds of `runs` runs, each followed by pruning every finished run: the file stops growing after the first.
    func retention(logger: Logger) async throws -> JSONValue {
        try await withEngine(logger: logger) { engine, store, tracker in
            let definition = BenchSaga.definition(participant: participant, shape: .happy)
            var sizes: [JSONValue] = []
            var pruned: [JSONValue] = []
            for _ in 0..<rounds {
                _ = try await Self.closedLoop(engine: engine, tracker: tracker, definition: definition, runs: runs, concurrency: concurrency)
                sizes.append(.int(Int64(try store.checkpointedSize())))
                let removed = try await store.prune(finishedBefore: Date().addingTimeInterval(1), batchSize: 1000)
                pruned.append(.int(Int64(removed)))
            }
            return JSONValue.object(["runs": .int(Int64(runs)), "rounds": .int(Int64(rounds)), "dbBytesAfterRound": .array(sizes), "prunedPerRound": .array(pruned)])
        }
    }
}

/// Follows runs through the engine's events: which have ended, and how many attempts were sent again.
final class RunTracker: Sendable {
    private struct State {
        var ended: Set<String> = []
        var waiting: [String: CheckedContinuation<Void, Never>] = [:]
        var endCount = 0
        var resendCount = 0
        var countWaiters: [(count: Int, resends: Bool, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())

    func observe(_ runID: String, _ events: [RunEvent]) {
        var resends = 0
        var ended = false
        for event in events {
            switch event.kind {
            case .attemptResent: resends += 1
            case .runCompleted, .runCompensated, .runCompensationFailed, .runStuck: ended = true
            default: break
            }
        }
        guard resends > 0 || ended else { return }
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.resendCount += resends
            var ready: [CheckedContinuation<Void, Never>] = []
            if ended {
                state.endCount += 1
                if let waiter = state.waiting.removeValue(forKey: runID) { ready.append(waiter) } else { state.ended.insert(runID) }
            }
            let (endCount, resendCount) = (state.endCount, state.resendCount)
            state.countWaiters.removeAll { waiter in
                guard (waiter.resends ? resendCount : endCount) >= waiter.count else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    func waitForEnd(of runID: String) async {
        await withCheckedContinuation { continuation in
            let ended = state.withLock { state in
                if state.ended.remove(runID) != nil { return true }
                state.waiting[runID] = continuation
                return false
            }
            if ended { continuation.resume() }
        }
    }

    func waitForEnds(count: Int) async { await wait(count: count, resends: false) }
    func waitForResends(count: Int) async { await wait(count: count, resends: true) }

    private func wait(count: Int, resends: Bool) async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if (resends ? state.resendCount : state.endCount) >= count { return true }
                state.countWaiters.append((count, resends, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }
}

/// CPU time used by this process so far.
struct ResourceUsage {
    var user: timeval
    var system: timeval

    static func now() -> ResourceUsage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return ResourceUsage(user: usage.ru_utime, system: usage.ru_stime)
    }

    static func - (after: ResourceUsage, before: ResourceUsage) -> ResourceUsage {
        func minus(_ a: timeval, _ b: timeval) -> timeval {
            var seconds = a.tv_sec - b.tv_sec
            var micros = a.tv_usec - b.tv_usec
            if micros < 0 {
                seconds -= 1
                micros += 1_000_000
            }
            return timeval(tv_sec: seconds, tv_usec: micros)
        }
        return ResourceUsage(user: minus(after.user, before.user), system: minus(after.system, before.system))
    }

    /// The process's resident memory now (`/proc/self/statm`), in bytes, after handing the allocator's free pages back
    /// (`malloc_trim`), so that it counts what the process holds, not what it freed.
    static func residentBytes() -> Int {
        typealias Trim = @convention(c) (Int) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
            _ = unsafeBitCast(symbol, to: Trim.self)(0)
        }
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    var cpuMilliseconds: Double {
        Double(user.tv_sec + system.tv_sec) * 1000 + Double(user.tv_usec + system.tv_usec) / 1000
    }

    /// The most memory this process has had resident at once.
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }
}

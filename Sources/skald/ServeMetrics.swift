import CoreMetrics
import Foundation
import Prometheus
import SkaldCore
import SkaldEngine
import Synchronization

/// `GET /metrics` of `skald serve`: the engine's and the store's counters and histograms (through swift-metrics,
/// into a Prometheus registry of this server's own), and, read when scraped, the runs in each status, the attempts
/// in flight, the database's size and the process's CPU, memory and open files.
final class ServeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    private let cpu: Prometheus.Counter
    private let cpuSeen = Mutex<Double>(0)

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "skald_attempt_duration_seconds": EngineMetrics.attemptDurationBuckets,
            "skald_run_duration_seconds": EngineMetrics.runDurationBuckets,
            "skald_store_commit_duration_seconds": StoreMetrics.commitDurationBuckets,
        ]
        factory.valueHistogramBuckets = ["skald_store_transitions_per_commit": StoreMetrics.transitionsPerCommitBuckets]
        self.factory = factory
        cpu = registry.makeCounter(descriptor: Self.named("process_cpu_seconds_total", "CPU time this process used, user and system, in seconds"))
    }

    /// A series' whole name (no unit suffix added) and its HELP text.
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    var engine: EngineMetrics { EngineMetrics(factory: factory) }
    var store: StoreMetrics { StoreMetrics(factory: factory) }

    /// The text for one scrape.
    func render(engine: Engine, database: any SkaldDatabase) async -> String {
        if let counts = try? await database.runCounts() {
            for status in RunStatus.allCases {
                registry.makeGauge(descriptor: Self.named("skald_runs", "Runs in the database in each status"), labels: [("status", status.rawValue)])
                    .set(Double(counts[status] ?? 0))
            }
        }
        if let waiting = try? await database.waitingSteps() {
            for kind in WaitKind.allCases {
                registry.makeGauge(
                    descriptor: Self.named("skald_steps_waiting", "Steps waiting now, by what for: a participant's callback, a person's approval, a sleep"),
                    labels: [("kind", kind.rawValue)]
                ).set(Double(waiting[kind] ?? 0))
            }
        }
        registry.makeGauge(descriptor: Self.named("skald_attempts_in_flight", "Attempts this server has sent and not yet stored an outcome for"))
            .set(Double(engine.attemptsInFlight))
        if let size = try? await database.sizeInBytes() {
            registry.makeGauge(descriptor: Self.named("skald_database_size_bytes", "The database's size on disk (SQLite: the file and its write-ahead log)"))
                .set(Double(size))
        }
        if let process = ProcessStatistics.read() {
            let used = cpuSeen.withLock { seen -> Double in
                defer { seen = max(seen, process.cpuSeconds) }
                return max(0, process.cpuSeconds - seen)
            }
            if used > 0 { cpu.increment(by: used) }
            registry.makeGauge(descriptor: Self.named("process_resident_memory_bytes", "Resident memory size in bytes")).set(Double(process.residentBytes))
            registry.makeGauge(descriptor: Self.named("process_virtual_memory_bytes", "Virtual memory size in bytes")).set(Double(process.virtualBytes))
            registry.makeGauge(descriptor: Self.named("process_open_fds", "Open file descriptors (files, sockets, the database)")).set(Double(process.openFiles))
            registry.makeGauge(descriptor: Self.named("process_max_fds", "The most file descriptors this process may open")).set(Double(process.maxFiles))
            registry.makeGauge(descriptor: Self.named("process_start_time_seconds", "When the process started, in seconds since 1970")).set(process.startTime)
        }
        return registry.emitToString()
    }
}

/// This process's CPU time, memory and open files, from Linux's /proc.
struct ProcessStatistics {
    var cpuSeconds: Double
    var residentBytes: Int
    var virtualBytes: Int
    var openFiles: Int
    var maxFiles: Int
    var startTime: Double

    static func read() -> ProcessStatistics? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15, starttime 22,
        // vsize 23, rss 24 (in pages).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double { Double(fields[number - 3]) ?? 0 }
        guard fields.count >= 22 else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = sysconf(Int32(_SC_PAGESIZE))
        let openFiles = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        var bootTime = 0.0
        if let system = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") })
        {
            bootTime = Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return ProcessStatistics(
            cpuSeconds: (field(14) + field(15)) / ticks, residentBytes: Int(field(24)) * page, virtualBytes: Int(field(23)),
            openFiles: max(0, openFiles - 1), maxFiles: Int(limit.rlim_cur), startTime: bootTime + field(22) / ticks)
    }
}

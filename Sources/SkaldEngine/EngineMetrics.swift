import CoreMetrics
import Foundation
import SkaldCore

/// What the engine counts and times, through swift-metrics, read from the events of each committed transition
/// (so a metric moves only once the change it counts is stored). Labels hold saga and step names, phases and
/// outcomes, never a run id or anything else without bound. The factory is injected (`skald serve` passes a
/// Prometheus one); the default records nothing.
///
/// - `skald_runs_started_total{saga}`
/// - `skald_runs_finished_total{saga,outcome}`: completed, compensated, cancelled (compensated after a cancel),
///   compensation_failed, stuck, abandoned; the last three can be left again by an operator
/// - `skald_run_duration_seconds{saga,outcome}`: from the run's start to that outcome
/// - `skald_attempts_total{saga,step,phase,outcome}`: success, retryable, failed (refused, not retryable),
///   timeout, transport
/// - `skald_attempt_duration_seconds{saga,step,phase}`
/// - `skald_retries_scheduled_total{saga,step,phase}`
public struct EngineMetrics: Sendable {
    let factory: any MetricsFactory
    /// Without a factory that records, nothing is built per event (the engine's hot path).
    let isRecording: Bool

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
        isRecording = !(factory is NOOPMetricsHandler)
    }

    /// Seconds histograms' buckets, for a factory that asks: attempts take milliseconds to a minute, runs up to hours.
    public static let attemptDurationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]
    public static let runDurationBuckets: [Duration] = [
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(900), .seconds(3600), .seconds(4 * 3600), .seconds(86400),
    ]

    /// Counts what `events` say happened to a run of `saga` that started at `startedAt`.
    func observe(saga: String, startedAt: Date?, state: RunState, events: [RunEvent]) {
        guard isRecording else { return }
        for event in events {
            switch event.kind {
            case .runStarted:
                Counter(label: "skald_runs_started_total", dimensions: [("saga", saga)], factory: factory).increment()
            case .attemptSucceeded, .attemptFailed:
                let phase = (event.phase ?? .forward).rawValue
                let step = event.step ?? ""
                let outcome: String
                if event.kind == .attemptSucceeded {
                    outcome = "success"
                } else {
                    switch event.data["kind"]?.stringValue {
                    case AttemptFailure.Kind.timeout.rawValue?: outcome = "timeout"
                    case AttemptFailure.Kind.transport.rawValue?: outcome = "transport"
                    default: outcome = event.data["retryable"]?.boolValue == true ? "retryable" : "failed"
                    }
                    if event.data["final"]?.boolValue == false {
                        Counter(
                            label: "skald_retries_scheduled_total", dimensions: [("saga", saga), ("step", step), ("phase", phase)], factory: factory
                        ).increment()
                    }
                }
                Counter(
                    label: "skald_attempts_total", dimensions: [("saga", saga), ("step", step), ("phase", phase), ("outcome", outcome)],
                    factory: factory
                ).increment()
                if let milliseconds = event.data["durationMs"]?.doubleValue {
                    Timer(label: "skald_attempt_duration_seconds", dimensions: [("saga", saga), ("step", step), ("phase", phase)], factory: factory)
                        .recordNanoseconds(Int64(milliseconds * 1_000_000))
                }
            case .runCompleted, .runCompensated, .runCompensationFailed, .runStuck, .runAbandoned:
                let outcome: String
                switch event.kind {
                case .runCompleted: outcome = "completed"
                case .runCompensated:
                    let cancelled = state.failure.map { $0.step == nil && $0.reason.hasPrefix("cancelled by ") } ?? false
                    outcome = cancelled ? "cancelled" : "compensated"
                case .runCompensationFailed: outcome = "compensation_failed"
                case .runStuck: outcome = "stuck"
                default: outcome = "abandoned"
                }
                Counter(label: "skald_runs_finished_total", dimensions: [("saga", saga), ("outcome", outcome)], factory: factory).increment()
                if let startedAt {
                    let seconds = max(0, event.at.timeIntervalSince(startedAt))
                    Timer(label: "skald_run_duration_seconds", dimensions: [("saga", saga), ("outcome", outcome)], factory: factory)
                        .recordNanoseconds(Int64(seconds * 1_000_000_000))
                }
            default:
                break
            }
        }
    }
}

extension EngineMetrics {
    /// - `skald_callbacks_total{outcome}`: what became of each callback posted: stored, repeated, conflict, unknown, gone
    func callbackReceived(_ receipt: CallbackReceipt) {
        guard isRecording else { return }
        let outcome: String
        switch receipt {
        case .stored: outcome = "stored"
        case .repeated: outcome = "repeated"
        case .conflict: outcome = "conflict"
        case .unknown: outcome = "unknown"
        case .gone: outcome = "gone"
        }
        Counter(label: "skald_callbacks_total", dimensions: [("outcome", outcome)], factory: factory).increment()
    }

    /// - `skald_participant_circuit_state{participant}`: 0 closed, 1 open, 2 half-open
    /// - `skald_participant_circuit_changes_total{participant,to}`
    func participantBreaker(_ id: ParticipantID, state: CircuitBreaker.State) {
        guard isRecording else { return }
        let value: Int
        switch state {
        case .closed: value = 0
        case .open: value = 1
        case .halfOpen: value = 2
        }
        Gauge(label: "skald_participant_circuit_state", dimensions: [("participant", id.description)], factory: factory).record(value)
        Counter(label: "skald_participant_circuit_changes_total", dimensions: [("participant", id.description), ("to", state.rawValue)], factory: factory)
            .increment()
    }

    /// - `skald_participant_calls_total{participant,verdict}`: success or failure as the breaker counts them
    /// - `skald_participant_held_back_total{participant}`: attempts not sent because the circuit was open
    /// - `skald_participant_in_flight{participant}`, `skald_participant_queued{participant}`
    func participantLoad(_ id: ParticipantID, inFlight: Int, queued: Int, heldBack: Int, verdict: ParticipantVerdict?) {
        guard isRecording else { return }
        let dimensions = [("participant", id.description)]
        Gauge(label: "skald_participant_in_flight", dimensions: dimensions, factory: factory).record(inFlight)
        Gauge(label: "skald_participant_queued", dimensions: dimensions, factory: factory).record(queued)
        if heldBack > 0 { Counter(label: "skald_participant_held_back_total", dimensions: dimensions, factory: factory).increment(by: heldBack) }
        if let verdict, verdict != .notCounted {
            Counter(
                label: "skald_participant_calls_total", dimensions: dimensions + [("verdict", verdict == .success ? "success" : "failure")],
                factory: factory
            ).increment()
        }
    }
}

/// What a store measures of its commits: `skald_store_commit_duration_seconds` (each transaction that stores runs'
/// progress, from its start to its commit) and `skald_store_transitions_per_commit` (SQLite's group commit carries
/// many; PostgreSQL's one-statement transitions carry one each).
public struct StoreMetrics: Sendable {
    let factory: any MetricsFactory
    let isRecording: Bool

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
        isRecording = !(factory is NOOPMetricsHandler)
    }

    public static let commitDurationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]
    public static let transitionsPerCommitBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

    public func committed(transitions: Int, in duration: Duration) {
        guard isRecording else { return }
        Timer(label: "skald_store_commit_duration_seconds", factory: factory).recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        Recorder(label: "skald_store_transitions_per_commit", factory: factory).record(transitions)
    }
}

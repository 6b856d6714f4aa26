import CoreMetrics
import Foundation
import SkaldCore
import Synchronization

/// A participant as the engine knows it: by name, from the server-wide settings (shared by every saga) or from
/// one saga's `participants` section (shared by that saga's runs).
public struct ParticipantID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var name: String
    /// The saga whose definition declares it; nil for the server-wide participants.
    public var saga: String?

    public var description: String { saga.map { "\($0)/\(name)" } ?? name }

    public static func < (lhs: ParticipantID, rhs: ParticipantID) -> Bool {
        (lhs.name, lhs.saga ?? "") < (rhs.name, rhs.saga ?? "")
    }
}

/// What a participant's gate answered an attempt that asked to go.
enum Admission: Sendable {
    /// Send it, and hand the permit back with its outcome.
    case granted(GatePermit)
    /// The circuit is open: do not send before this time (the run stores that its step waits).
    case open(until: Date)
    /// The run no longer wants it (or the engine is draining).
    case withdrawn
}

struct GatePermit: Sendable {
    var probe: Bool
    /// The breaker's `timesOpened` when the permit was given: a probe's outcome counts only in its own round.
    var round: Int
}

/// One participant's circuit breaker, bulkhead and rate limit, shared by every run that calls it. Attempts ask
/// `admit` before they are stored as sent; those that cannot go yet wait here in arrival order (no run is starved),
/// except that while the circuit is open they are answered at once with the time of the next probe.
///
/// State is kept in memory only: after a restart every circuit starts closed.
public final class ParticipantGate: Sendable {
    public let id: ParticipantID
    private let clock: any EngineClock
    private let metrics: EngineMetrics
    private let state: Mutex<GateState>
    /// The longest a 429's `Retry-After` holds the whole participant back (a run's own retry honours it as its
    /// retry policy allows).
    static let maximumPause: TimeInterval = 300

    private struct Waiter {
        var ticket: Int
        /// False for an attempt already stored as in flight (re-sent after a restart): it waits here instead.
        var mayDefer: Bool
        var continuation: CheckedContinuation<Admission, Never>
    }

    private struct GateState {
        var settings: ParticipantSettings
        /// The version of the saga whose definition gave the settings (0 for the server-wide ones).
        var version = 0
        var breaker: CircuitBreaker?
        var bucket: TokenBucket?
        var inFlight = 0
        /// A 429's `Retry-After`: nothing is sent before this.
        var pausedUntil: Date?
        var queue = FIFO<Waiter>()
        var queued = 0
        /// The wake-up asked of the clock, if any.
        var timerAt: Date?
        var nextTicket = 0
        var sent = 0
        var failed = 0
        var heldBack = 0
    }

    init(id: ParticipantID, settings: ParticipantSettings, version: Int = 0, clock: any EngineClock, metrics: EngineMetrics) {
        self.id = id
        self.clock = clock
        self.metrics = metrics
        state = Mutex(
            GateState(
                settings: settings, version: version, breaker: settings.circuitBreaker.map(CircuitBreaker.init(settings:)),
                bucket: settings.rateLimit.map(TokenBucket.init(settings:))))
    }

    /// A newer version of the saga declares the participant: its settings replace the older ones (the breaker and
    /// the bucket start afresh if theirs changed), and runs of every version share them. An older version changes
    /// nothing, so runs of two versions do not keep resetting the breaker.
    func update(_ settings: ParticipantSettings, version: Int) {
        let changed = state.withLock { state -> Bool in
            guard version > state.version else { return false }
            state.version = version
            guard state.settings != settings else { return false }
            if state.settings.circuitBreaker != settings.circuitBreaker { state.breaker = settings.circuitBreaker.map(CircuitBreaker.init(settings:)) }
            if state.settings.rateLimit != settings.rateLimit { state.bucket = settings.rateLimit.map(TokenBucket.init(settings:)) }
            state.settings = settings
            return true
        }
        if changed { pump() }
    }

    func newTicket() -> Int {
        state.withLock { state in
            state.nextTicket += 1
            return state.nextTicket
        }
    }

    /// Waits until the attempt may be sent, or the circuit is open (answered at once when `mayDefer`).
    func admit(ticket: Int, mayDefer: Bool) async -> Admission {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Admission, Never>) in
                let cancelled = state.withLock { state -> Bool in
                    if Task.isCancelled { return true }
                    state.queue.append(Waiter(ticket: ticket, mayDefer: mayDefer, continuation: continuation))
                    state.queued += 1
                    return false
                }
                if cancelled { continuation.resume(returning: .withdrawn) } else { pump() }
            }
        } onCancel: {
            withdraw(ticket)
        }
    }

    /// The run no longer wants the attempt waiting under `ticket` (a cancel, the deadline): it leaves the queue.
    func withdraw(_ ticket: Int) {
        let waiter = state.withLock { state -> Waiter? in
            guard let waiter = state.queue.remove(where: { $0.ticket == ticket }) else { return nil }
            state.queued -= 1
            return waiter
        }
        waiter?.continuation.resume(returning: .withdrawn)
        if waiter != nil { pump() }
    }

    /// An admitted attempt ended: with its outcome, or nil when it was not sent or its outcome is not known (the
    /// engine stopped it). Only a finished call moves the breaker.
    func finish(_ permit: GatePermit, outcome: AttemptOutcome?, duration: Duration) {
        let now = clock.now()
        var verdict: ParticipantVerdict?
        let changed = state.withLock { state -> CircuitBreaker.State? in
            state.inFlight -= 1
            guard let outcome else {
                if permit.probe { state.breaker?.returnProbe(round: permit.round) }
                return nil
            }
            let counted = ParticipantVerdict(outcome)
            verdict = counted
            if counted == .failure { state.failed += 1 }
            if case .failed(let failure) = outcome, failure.response?.status == 429, let retryAfter = failure.retryAfter {
                let until = now.addingTimeInterval(min(retryAfter.seconds, Self.maximumPause))
                state.pausedUntil = max(state.pausedUntil ?? until, until)
            }
            guard state.breaker?.record(counted, duration: duration, probe: permit.probe, round: permit.round, at: now) == true else { return nil }
            return state.breaker?.state
        }
        if let changed { metrics.participantBreaker(id, state: changed) }
        pump(verdict: verdict)
    }

    /// Grants, defers or keeps waiting each attempt in the queue, first come first served.
    private func pump(verdict: ParticipantVerdict? = nil) {
        let now = clock.now()
        var heldBack = 0
        var answers: [(CheckedContinuation<Admission, Never>, Admission)] = []
        var wentHalfOpen = false
        var load = (inFlight: 0, queued: 0)
        let wake = state.withLock { state -> Date? in
            var wakeAt: Date?
            queue: while let head = state.queue.first {
                if let breaker = state.breaker, breaker.state == .open, let until = breaker.openUntil, now < until {
                    // Every attempt that may wait stored is told when the probe comes; a re-sent attempt (already
                    // stored as in flight) waits here for it.
                    let deferred = state.queue.removeAll { $0.mayDefer }
                    state.queued -= deferred.count
                    state.heldBack += deferred.count
                    heldBack += deferred.count
                    answers += deferred.map { ($0.continuation, Admission.open(until: until)) }
                    if !state.queue.isEmpty { wakeAt = until }
                    break
                }
                if let limit = state.settings.maxInFlight, state.inFlight >= limit { break }
                if let paused = state.pausedUntil, now < paused {
                    wakeAt = paused
                    break
                }
                if let bucket = state.bucket, bucket.available(at: now) < 1 - 1e-9 {
                    var peek = bucket
                    wakeAt = peek.take(at: now)
                    break
                }
                var probe = false
                if state.breaker != nil {
                    let before = state.breaker!.state
                    let decision = state.breaker!.decide(at: now)
                    if before == .open && state.breaker!.state == .halfOpen { wentHalfOpen = true }
                    switch decision {
                    case .allow(let isProbe): probe = isProbe
                    case .waitForProbes: break queue
                    case .rejectUntil: continue queue  // answered at the top of the loop
                    }
                }
                _ = state.bucket?.take(at: now)
                _ = state.queue.popFirst()
                state.queued -= 1
                state.inFlight += 1
                state.sent += 1
                answers.append((head.continuation, .granted(GatePermit(probe: probe, round: state.breaker?.timesOpened ?? 0))))
            }
            load = (state.inFlight, state.queued)
            guard let wakeAt, state.timerAt.map({ wakeAt < $0 }) ?? true else { return nil }
            state.timerAt = wakeAt
            return wakeAt
        }
        metrics.participantLoad(id, inFlight: load.inFlight, queued: load.queued, heldBack: heldBack, verdict: verdict)
        if wentHalfOpen { metrics.participantBreaker(id, state: .halfOpen) }
        for (continuation, admission) in answers { continuation.resume(returning: admission) }
        if let wake {
            let clock = self.clock
            Task { [weak self] in
                try? await clock.sleep(until: wake)
                guard let self else { return }
                self.state.withLock { state in
                    if state.timerAt == wake { state.timerAt = nil }
                }
                self.pump()
            }
        }
    }

    /// What the gate looks like now, for `GET /v1/participants`.
    public func status() -> ParticipantStatus {
        let now = clock.now()
        return state.withLock { state in
            let rates = state.breaker?.rates(at: now)
            var breakerState = state.breaker?.state
            if breakerState == .open, let until = state.breaker?.openUntil, now >= until { breakerState = .halfOpen }
            return ParticipantStatus(
                id: id, settings: state.settings, state: breakerState, failureRate: rates?.failure, slowCallRate: rates?.slow,
                callsInWindow: rates?.calls ?? 0, inFlight: state.inFlight, queued: state.queued,
                nextProbeAt: breakerState == .open ? state.breaker?.openUntil : nil,
                pausedUntil: state.pausedUntil.flatMap { $0 > now ? $0 : nil }, timesOpened: state.breaker?.timesOpened ?? 0,
                sent: state.sent, failed: state.failed, heldBack: state.heldBack)
        }
    }
}

/// A participant's state as shown to operators.
public struct ParticipantStatus: Sendable {
    public var id: ParticipantID
    public var settings: ParticipantSettings
    /// Nil when the participant has no circuit breaker.
    public var state: CircuitBreaker.State?
    public var failureRate: Double?
    public var slowCallRate: Double?
    public var callsInWindow: Int
    public var inFlight: Int
    public var queued: Int
    public var nextProbeAt: Date?
    public var pausedUntil: Date?
    public var timesOpened: Int
    /// Attempts let through since the engine started.
    public var sent: Int
    /// Of those, the ones that failed in a way that counts against the breaker.
    public var failed: Int
    /// Attempts held back because the circuit was open (each wait of each run counts once).
    public var heldBack: Int
}

/// Every participant the engine protects: the server-wide ones and those of the sagas it runs, each gate made the
/// first time a run calls the participant.
public final class ParticipantRegistry: Sendable {
    let serverWide: [String: ParticipantSettings]
    /// Server-wide participants matched by the start of a call's URL, longest first.
    let byBaseURL: [(prefix: String, name: String)]
    private let gates = Mutex<[ParticipantID: ParticipantGate]>([:])
    private let clock: any EngineClock
    private let metrics: EngineMetrics

    init(serverWide: [String: ParticipantSettings], clock: any EngineClock, metrics: EngineMetrics) {
        self.serverWide = serverWide
        self.clock = clock
        self.metrics = metrics
        byBaseURL = serverWide.compactMap { name, settings in settings.baseURL.map { ($0, name) } }.sorted { $0.prefix.count > $1.prefix.count }
        for (name, settings) in serverWide {
            _ = gate(ParticipantID(name: name, saga: nil), settings)
        }
    }

    /// Whether any participant could apply to a call of `saga`.
    func applies(to saga: SagaDefinition) -> Bool {
        !saga.participants.isEmpty || !byBaseURL.isEmpty
    }

    /// The participant a step's calls go through: the one it names (the server-wide settings of that name, else
    /// the saga's), or the server-wide one whose `baseUrl` starts the call's URL.
    func gate(for saga: SagaDefinition, step index: Int, url: () -> String?) -> ParticipantGate? {
        if saga.steps[index].participant != nil {
            guard let named = Self.settings(for: saga, step: index, serverWide: serverWide) else { return nil }
            return named.serverWide
                ? gate(ParticipantID(name: named.name, saga: nil), named.settings)
                : gate(ParticipantID(name: named.name, saga: saga.name), named.settings, version: saga.version)
        }
        guard !byBaseURL.isEmpty, let url = url() else { return nil }
        guard let match = byBaseURL.first(where: { Self.url(url, startsWith: $0.prefix) }) else { return nil }
        return gate(ParticipantID(name: match.name, saga: nil), serverWide[match.name]!)
    }

    /// The participant a step names and the settings in force: the server-wide ones of that name, else the saga's
    /// (nil when the step names none). The one place that says which wins, for the engine and for `skald plan`.
    public static func settings(
        for saga: SagaDefinition, step index: Int, serverWide: [String: ParticipantSettings]
    ) -> (name: String, settings: ParticipantSettings, serverWide: Bool)? {
        guard let name = saga.steps[index].participant else { return nil }
        if let settings = serverWide[name] { return (name, settings, true) }
        return saga.participants[name].map { (name, $0, false) }
    }

    static func url(_ url: String, startsWith prefix: String) -> Bool {
        guard url.count >= prefix.count else { return false }
        let head = url.prefix(prefix.count)
        guard head.lowercased() == prefix.lowercased() else { return false }
        // "http://host:90" must not match "http://host:9002/…".
        if prefix.hasSuffix("/") || url.count == prefix.count { return true }
        let next = url[url.index(url.startIndex, offsetBy: prefix.count)]
        return next == "/" || next == "?" || next == "#"
    }

    /// - Parameter version: the version of the saga that declares it (0 for the server-wide participants).
    private func gate(_ id: ParticipantID, _ settings: ParticipantSettings, version: Int = 0) -> ParticipantGate {
        let (gate, isNew) = gates.withLock { gates -> (ParticipantGate, Bool) in
            if let gate = gates[id] { return (gate, false) }
            let gate = ParticipantGate(id: id, settings: settings, version: version, clock: clock, metrics: metrics)
            gates[id] = gate
            return (gate, true)
        }
        if !isNew && version > 0 { gate.update(settings, version: version) }
        return gate
    }

    /// Every participant seen so far, by name.
    public func statuses() -> [ParticipantStatus] {
        gates.withLock { Array($0.values) }.map { $0.status() }.sorted { $0.id < $1.id }
    }
}

/// Why a step is not being sent now.
public struct ParticipantWait: Sendable, Hashable {
    public enum Reason: String, Sendable {
        /// The circuit is open until `until` (stored: the step's next attempt is due then).
        case circuitOpen = "circuit_open"
        /// Waiting in line for the bulkhead, the rate limit, a 429's Retry-After or the half-open probes.
        case queued
    }

    public var participant: String
    public var reason: Reason
    public var until: Date?
}

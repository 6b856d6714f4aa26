import Foundation

/// A circuit breaker's rules as a value: closed, open or half-open, moved by the calls it lets through and their
/// outcomes, and by time (passed in, never read). The engine keeps one per participant, in memory.
public struct CircuitBreaker: Sendable {
    public enum State: String, Sendable, Hashable {
        case closed
        case open
        case halfOpen = "half_open"
    }

    public enum Decision: Sendable, Hashable {
        /// Send it; `probe` when it is one of the half-open state's trial calls.
        case allow(probe: Bool)
        /// Do not send it before this time.
        case rejectUntil(Date)
        /// Half-open with every probe already let through: wait for their outcomes.
        case waitForProbes
    }

    public let settings: CircuitBreakerSettings
    public private(set) var state: State = .closed
    /// While open: when probes may go.
    public private(set) var openUntil: Date?
    /// The wait used the last time it opened (grows while probes fail).
    public private(set) var currentOpenFor: Duration
    /// How many times it has opened.
    public private(set) var timesOpened = 0
    private var probesLetThrough = 0
    private var probesSucceeded = 0
    /// The window's calls: how many, how many failed, how many were slow.
    private var window: CallWindow

    public init(settings: CircuitBreakerSettings) {
        self.settings = settings
        currentOpenFor = settings.openFor
        window = CallWindow(settings.window)
    }

    /// Whether a call may be sent now. Moves an open circuit whose wait has passed to half-open.
    public mutating func decide(at now: Date) -> Decision {
        switch state {
        case .closed:
            return .allow(probe: false)
        case .open:
            if let openUntil, now < openUntil { return .rejectUntil(openUntil) }
            state = .halfOpen
            openUntil = nil
            probesLetThrough = 0
            probesSucceeded = 0
            return decide(at: now)
        case .halfOpen:
            guard probesLetThrough < settings.probes else { return .waitForProbes }
            probesLetThrough += 1
            return .allow(probe: true)
        }
    }

    /// A call let through by `decide` finished. Returns whether the state changed.
    ///
    /// - Parameter round: for a probe, `timesOpened` when it was let through: a probe of an earlier half-open
    ///   round (still in flight when the circuit opened again) changes nothing. Nil: the current round.
    @discardableResult
    public mutating func record(_ verdict: ParticipantVerdict, duration: Duration, probe: Bool, round: Int? = nil, at now: Date) -> Bool {
        if probe, let round, round != timesOpened { return false }
        guard verdict != .notCounted else {
            if probe, state == .halfOpen { probesLetThrough = max(0, probesLetThrough - 1) }
            return false
        }
        let failed = verdict == .failure
        let slow = settings.slowCall.map { duration >= $0 } ?? false
        switch state {
        case .halfOpen where probe:
            if failed || slow {
                open(at: now, backingOff: true)
                return true
            }
            probesSucceeded += 1
            if probesSucceeded >= settings.probes {
                state = .closed
                window.removeAll()
                currentOpenFor = settings.openFor
                return true
            }
            return false
        case .closed:
            window.add(at: now, failed: failed, slow: slow)
            guard window.calls >= settings.minimumCalls else { return false }
            let failures = Double(window.failed) * 100 / Double(window.calls)
            let slows = Double(window.slow) * 100 / Double(window.calls)
            if failures >= settings.failureRate || (settings.slowCall != nil && slows >= settings.slowCallRate) {
                open(at: now, backingOff: false)
                return true
            }
            return false
        default:
            // A call sent before the circuit opened, finishing now: it changes nothing.
            return false
        }
    }

    /// A probe let through but never sent (its run no longer wanted it): another of the same round may take its place.
    public mutating func returnProbe(round: Int? = nil) {
        if state == .halfOpen, round == nil || round == timesOpened { probesLetThrough = max(0, probesLetThrough - 1) }
    }

    /// The failure and slow-call rates over the window now, in percent (nil with no calls in it).
    public func rates(at now: Date) -> (failure: Double, slow: Double, calls: Int)? {
        var window = self.window
        window.expire(at: now)
        guard window.calls > 0 else { return nil }
        let count = Double(window.calls)
        return (Double(window.failed) * 100 / count, Double(window.slow) * 100 / count, window.calls)
    }

    private mutating func open(at now: Date, backingOff: Bool) {
        if backingOff {
            let longer = currentOpenFor.seconds * settings.backoffCoefficient
            currentOpenFor = Duration(secondsValue: min(longer, settings.maxOpenFor.seconds))
        } else {
            currentOpenFor = settings.openFor
        }
        state = .open
        openUntil = now.addingTimeInterval(currentOpenFor.seconds)
        timesOpened += 1
        window.removeAll()
    }
}

/// A token bucket: a call takes a token; tokens come back at `perSecond`, at most `burst` held.
public struct TokenBucket: Sendable {
    public let settings: RateLimitSettings
    private var tokens: Double
    private var updatedAt: Date?

    public init(settings: RateLimitSettings) {
        self.settings = settings
        tokens = Double(settings.burst)
    }

    /// Takes a token if one is there now; otherwise returns when the next one comes (and takes nothing).
    public mutating func take(at now: Date) -> Date? {
        refill(at: now)
        if tokens >= 1 - 1e-9 {
            tokens = max(0, tokens - 1)
            return nil
        }
        return now.addingTimeInterval((1 - tokens) / settings.perSecond)
    }

    /// Tokens held now.
    public func available(at now: Date) -> Double {
        var copy = self
        copy.refill(at: now)
        return copy.tokens
    }

    private mutating func refill(at now: Date) {
        if let updatedAt, now > updatedAt {
            tokens = min(Double(settings.burst), tokens + now.timeIntervalSince(updatedAt) * settings.perSecond)
        }
        if updatedAt.map({ now > $0 }) ?? true { updatedAt = now }
    }
}

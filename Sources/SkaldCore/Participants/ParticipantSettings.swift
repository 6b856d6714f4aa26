import Foundation

/// How Skald protects one participant (a service that steps call) from the load of all runs together: a circuit
/// breaker, a bulkhead (calls in flight at once) and a rate limit. Every part is optional; a participant with none
/// only names the service.
///
/// Declared in a saga's `participants` section (steps name it with `"participant"`), or in the server-wide file
/// `skald serve --participants FILE`, whose entries are shared by every saga and may match calls by `baseUrl`.
public struct ParticipantSettings: Sendable, Hashable {
    /// Server-wide participants only: calls whose URL starts with this are the participant's, whichever saga makes
    /// them and whether or not the step names a participant.
    public var baseURL: String?
    public var circuitBreaker: CircuitBreakerSettings?
    /// The most attempts in flight to the participant at once; further ones wait in order.
    public var maxInFlight: Int?
    public var rateLimit: RateLimitSettings?

    public init(
        baseURL: String? = nil, circuitBreaker: CircuitBreakerSettings? = nil, maxInFlight: Int? = nil, rateLimit: RateLimitSettings? = nil
    ) {
        self.baseURL = baseURL
        self.circuitBreaker = circuitBreaker
        self.maxInFlight = maxInFlight
        self.rateLimit = rateLimit
    }

    /// One line for `skald plan` and the participants listing.
    public var summary: String {
        var parts: [String] = []
        if let breaker = circuitBreaker { parts.append("circuit breaker (\(breaker.summary))") }
        if let maxInFlight { parts.append("bulkhead of \(maxInFlight) in flight") }
        if let rateLimit { parts.append("rate limit \(rateLimit.summary)") }
        return parts.isEmpty ? "no limits" : parts.joined(separator: "; ")
    }
}

public struct CircuitBreakerSettings: Sendable, Hashable {
    public enum Window: Sendable, Hashable {
        /// The last N calls.
        case calls(Int)
        /// The calls that finished within the last span of time.
        case time(Duration)
    }

    public var window: Window
    /// No decision is taken on fewer calls than this in the window.
    public var minimumCalls: Int
    /// Opens when at least this percentage of the window's calls failed (transport errors, timeouts, 5xx, 429).
    public var failureRate: Double
    /// A call that takes at least this long is slow; nil: no call counts as slow.
    public var slowCall: Duration?
    /// Opens when at least this percentage of the window's calls were slow.
    public var slowCallRate: Double
    /// How long the circuit stays open before letting probes through.
    public var openFor: Duration
    /// Each time a probe fails the wait is multiplied by `backoffCoefficient`, up to this.
    public var maxOpenFor: Duration
    public var backoffCoefficient: Double
    /// Calls let through while half-open; the circuit closes when all of them succeed.
    public var probes: Int

    public init(
        window: Window = .calls(20), minimumCalls: Int = 10, failureRate: Double = 50, slowCall: Duration? = nil, slowCallRate: Double = 100,
        openFor: Duration = .seconds(10), maxOpenFor: Duration = .seconds(300), backoffCoefficient: Double = 2, probes: Int = 1
    ) {
        self.window = window
        self.minimumCalls = minimumCalls
        self.failureRate = failureRate
        self.slowCall = slowCall
        self.slowCallRate = slowCallRate
        self.openFor = openFor
        self.maxOpenFor = maxOpenFor
        self.backoffCoefficient = backoffCoefficient
        self.probes = probes
    }

    public var summary: String {
        let window: String
        switch self.window {
        case .calls(let n): window = "last \(n) calls"
        case .time(let span): window = "calls of the last \(DurationText.format(span))"
        }
        var text = "opens at \(Self.percent(failureRate)) failures over the \(window), at least \(minimumCalls) calls"
        if let slowCall { text += ", or \(Self.percent(slowCallRate)) slower than \(DurationText.format(slowCall))" }
        text += "; open for \(DurationText.format(openFor))"
        if backoffCoefficient > 1 && maxOpenFor > openFor { text += " (×\(Self.number(backoffCoefficient)) per failed probe, up to \(DurationText.format(maxOpenFor)))" }
        text += "; \(probes) probe\(probes == 1 ? "" : "s") when half-open"
        return text
    }

    static func percent(_ value: Double) -> String { "\(number(value))%" }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// A token bucket: `perSecond` tokens a second, holding at most `burst`.
public struct RateLimitSettings: Sendable, Hashable {
    public var perSecond: Double
    public var burst: Int

    public init(perSecond: Double, burst: Int = 1) {
        self.perSecond = perSecond
        self.burst = burst
    }

    public var summary: String { "\(CircuitBreakerSettings.number(perSecond))/s, burst \(burst)" }
}

/// Whether an attempt's outcome says the participant is in trouble: only transport errors, timeouts, 5xx and 429
/// count against its circuit breaker. A refusal the step declares (a 4xx) means the participant is working.
public enum ParticipantVerdict: Sendable, Hashable {
    case success
    case failure
    /// Not sent (the request could not be built): says nothing about the participant.
    case notCounted

    public init(_ outcome: AttemptOutcome) {
        switch outcome {
        case .succeeded:
            self = .success
        case .failed(let failure):
            switch failure.kind {
            case .transport, .timeout: self = .failure
            case .status:
                let status = failure.response?.status ?? 0
                self = status >= 500 || status == 429 ? .failure : .success
            case .responseTooLarge: self = .success
            case .request: self = .notCounted
            }
        }
    }
}

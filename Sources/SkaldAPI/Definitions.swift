import Foundation
import SkaldCore

// The API's other shapes: definitions, participants, health and errors.

/// A registered saga: `GET /v1/definitions` (without `definition`), `GET /v1/definitions/{name}` (with it and the
/// graph) and `POST /v1/definitions` (with the warnings).
public struct DefinitionView: APIObject {
    public var name: String
    public var version: Int
    public var hash: String
    public var registeredAt: Date
    @Nullable public var description: String?
    public var steps: [String]
    /// The definition as registered, with credential headers masked (`***`).
    public var definition: JSONValue?
    public var graph: GraphView?
    /// What the definition may not mean as written, on registering it.
    public var warnings: [ProblemView]?

    public enum CodingKeys: String, CodingKey, CaseIterable { case name, version, hash, registeredAt, description, steps, definition, graph, warnings }

    public init(
        name: String, version: Int, hash: String, registeredAt: Date, description: String?, steps: [String], definition: JSONValue? = nil,
        graph: GraphView? = nil, warnings: [ProblemView]? = nil
    ) {
        self.name = name
        self.version = version
        self.hash = hash
        self.registeredAt = registeredAt
        self.description = description
        self.steps = steps
        self.definition = definition
        self.graph = graph
        self.warnings = warnings
    }
}

/// `GET /v1/definitions`.
public struct DefinitionsPage: APIObject {
    public var definitions: [DefinitionView]

    public enum CodingKeys: String, CodingKey, CaseIterable { case definitions }

    public init(definitions: [DefinitionView]) { self.definitions = definitions }
}

/// One problem with a definition, where it is.
public struct ProblemView: APIObject {
    /// The JSON path (`$.steps[1].request.url`).
    @Nullable public var path: String?
    @Nullable public var line: Int?
    @Nullable public var column: Int?
    public var message: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case path, line, column, message }

    public init(path: String?, line: Int?, column: Int?, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }
}

/// A participant this node protects: its circuit, its load and its settings (per node, in memory).
public struct ParticipantView: APIObject {
    public var name: String
    @Nullable public var saga: String?
    /// `closed`, `open` or `half_open`; null without a circuit breaker.
    @Nullable public var circuit: String?
    @Nullable public var failureRate: Double?
    @Nullable public var slowCallRate: Double?
    public var callsInWindow: Int
    public var inFlight: Int
    public var queued: Int
    @Nullable public var nextProbeAt: Date?
    @Nullable public var pausedUntil: Date?
    public var timesOpened: Int
    public var sent: Int
    public var failed: Int
    public var heldBack: Int
    public var settings: ParticipantSettingsView
    public var summary: String

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case name, saga, circuit, failureRate, slowCallRate, callsInWindow, inFlight, queued, nextProbeAt, pausedUntil, timesOpened
        case sent, failed, heldBack, settings, summary
    }

    public init(
        name: String, saga: String?, circuit: String?, failureRate: Double?, slowCallRate: Double?, callsInWindow: Int, inFlight: Int,
        queued: Int, nextProbeAt: Date?, pausedUntil: Date?, timesOpened: Int, sent: Int, failed: Int, heldBack: Int,
        settings: ParticipantSettingsView, summary: String
    ) {
        self.name = name
        self.saga = saga
        self.circuit = circuit
        self.failureRate = failureRate
        self.slowCallRate = slowCallRate
        self.callsInWindow = callsInWindow
        self.inFlight = inFlight
        self.queued = queued
        self.nextProbeAt = nextProbeAt
        self.pausedUntil = pausedUntil
        self.timesOpened = timesOpened
        self.sent = sent
        self.failed = failed
        self.heldBack = heldBack
        self.settings = settings
        self.summary = summary
    }
}

/// A participant's protection as configured; each part only when set.
public struct ParticipantSettingsView: APIObject {
    public var baseUrl: String?
    public var circuitBreaker: CircuitBreakerView?
    public var bulkhead: BulkheadView?
    public var rateLimit: RateLimitView?

    public enum CodingKeys: String, CodingKey, CaseIterable { case baseUrl, circuitBreaker, bulkhead, rateLimit }

    public init(baseUrl: String?, circuitBreaker: CircuitBreakerView?, bulkhead: BulkheadView?, rateLimit: RateLimitView?) {
        self.baseUrl = baseUrl
        self.circuitBreaker = circuitBreaker
        self.bulkhead = bulkhead
        self.rateLimit = rateLimit
    }
}

public struct CircuitBreakerView: APIObject {
    public var failureRate: Double
    public var minimumCalls: Int
    /// A duration (`30s`).
    public var openFor: String
    public var maxOpenFor: String
    public var backoffCoefficient: Double
    public var probes: Int
    /// The window: the last N calls, or the calls of the last span of time.
    public var windowCalls: Int?
    public var windowTime: String?
    public var slowCall: String?
    public var slowCallRate: Double?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case failureRate, minimumCalls, openFor, maxOpenFor, backoffCoefficient, probes, windowCalls, windowTime, slowCall, slowCallRate
    }

    public init(
        failureRate: Double, minimumCalls: Int, openFor: String, maxOpenFor: String, backoffCoefficient: Double, probes: Int,
        windowCalls: Int?, windowTime: String?, slowCall: String?, slowCallRate: Double?
    ) {
        self.failureRate = failureRate
        self.minimumCalls = minimumCalls
        self.openFor = openFor
        self.maxOpenFor = maxOpenFor
        self.backoffCoefficient = backoffCoefficient
        self.probes = probes
        self.windowCalls = windowCalls
        self.windowTime = windowTime
        self.slowCall = slowCall
        self.slowCallRate = slowCallRate
    }
}

public struct BulkheadView: APIObject {
    public var maxInFlight: Int

    public enum CodingKeys: String, CodingKey, CaseIterable { case maxInFlight }

    public init(maxInFlight: Int) { self.maxInFlight = maxInFlight }
}

public struct RateLimitView: APIObject {
    public var perSecond: Double
    public var burst: Int

    public enum CodingKeys: String, CodingKey, CaseIterable { case perSecond, burst }

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }
}

/// `GET /v1/participants`.
public struct ParticipantsPage: APIObject {
    public var participants: [ParticipantView]

    public enum CodingKeys: String, CodingKey, CaseIterable { case participants }

    public init(participants: [ParticipantView]) { self.participants = participants }
}

/// `GET /health`: whether the database works; public, so it never carries the database's own error text.
public struct HealthView: APIObject {
    /// `ok`, `degraded` or `unavailable`.
    public var status: String
    public var database: String
    /// Why it is not ok.
    public var message: String?
    /// What this node cannot do well although it is healthy.
    public var warnings: [String]?

    public enum CodingKeys: String, CodingKey, CaseIterable { case status, database, message, warnings }

    public init(status: String, database: String, message: String? = nil, warnings: [String]? = nil) {
        self.status = status
        self.database = database
        self.message = message
        self.warnings = warnings
    }
}

/// `GET /health/live` and `GET /health/ready`, for an orchestrator's probes.
public struct ProbeView: APIObject {
    /// `ok` (live), `ready` or `not_ready`.
    public var status: String
    /// Why the node is not ready; left out when it is.
    public var reasons: [String]?

    public enum CodingKeys: String, CodingKey, CaseIterable { case status, reasons }

    public init(status: String, reasons: [String]? = nil) {
        self.status = status
        self.reasons = reasons
    }
}

/// Every error answer: `{"error": {"code", "message", "details"}}`.
public struct ErrorBody: APIObject {
    public var error: ErrorView

    public enum CodingKeys: String, CodingKey, CaseIterable { case error }

    public init(error: ErrorView) { self.error = error }
}

public struct ErrorView: APIObject {
    /// Stable: `not_found`, `conflict`, `invalid`… (the document lists them).
    public var code: String
    public var message: String
    /// Extra detail, such as every validation problem with its path.
    public var details: JSONValue?

    public enum CodingKeys: String, CodingKey, CaseIterable { case code, message, details }

    public init(code: String, message: String, details: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }
}

import Foundation

/// A run's W3C trace context: one trace per run, so every call to a participant, across retries, compensations,
/// restarts and nodes, belongs to the same trace. The run keeps the `traceparent` it was started with (the caller's,
/// so the run continues the trace of the request that started it, or one Skald made) and the caller's `tracestate`.
/// Each attempt is sent as a child span of it, with a span id of its own.
public struct RunTrace: Sendable, Hashable {
    /// The run's `traceparent` header value: version, trace id, parent span id, flags.
    public var parent: String
    /// The caller's `tracestate`, passed on unchanged.
    public var state: String?

    public init(parent: String, state: String? = nil) {
        self.parent = parent
        self.state = state
    }
}

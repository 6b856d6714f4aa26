import Foundation
import SkaldCore
import W3CTraceContext

/// Making and continuing traces with swift-w3c-trace-context (the value itself, in `RunTrace.swift`, needs none).
extension RunTrace {
    /// A new trace, for a run nobody's trace started: random ids, sampled.
    public static func new() -> RunTrace {
        let context = TraceContext(traceID: .random(), spanID: .random(), flags: .sampled, state: TraceState())
        return RunTrace(parent: context.traceParentHeaderValue)
    }

    /// The caller's trace, when its `traceparent` is valid (a malformed one is ignored, as the W3C specification
    /// says: the run then starts a trace of its own). `tracestate` is kept only with a valid `traceparent`.
    public static func continuing(traceparent: String?, tracestate: String?) -> RunTrace? {
        guard let traceparent = traceparent?.trimmingCharacters(in: .whitespaces), !traceparent.isEmpty,
            let context = try? TraceContext(traceParentHeaderValue: traceparent, traceStateHeaderValue: tracestate)
        else { return nil }
        return RunTrace(parent: context.traceParentHeaderValue, state: context.traceStateHeaderValue)
    }

    /// The trace id, 32 lowercase hex digits.
    public var traceID: String {
        parent.split(separator: "-").dropFirst().first.map(String.init) ?? ""
    }

    /// The headers one attempt is sent with: the run's trace, a span id of the attempt's own (the same each time
    /// that attempt is sent again after a restart), the run's flags, and the caller's `tracestate`.
    public func headers(for attempt: AttemptKey) -> (traceparent: String, tracestate: String?) {
        let parts = parent.split(separator: "-")
        let flags = parts.count == 4 ? parts[3] : "01"
        // FNV-1a over the attempt's name: cheap, and the same every time the attempt is sent; never all zeros.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(attempt.runID):\(attempt.stepName):\(attempt.phase.rawValue):\(attempt.number)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        if hash == 0 { hash = 1 }
        let hex = String(hash, radix: 16)
        let span = String(repeating: "0", count: 16 - hex.count) + hex
        return ("00-\(traceID)-\(span)-\(flags)", state)
    }
}

import Foundation

/// The calls a circuit breaker takes its rates over, in fixed memory, each call counted in constant time.
///
/// - `calls(N)`: the last N calls, in a ring of N entries.
/// - `time(span)`: the calls of the last span, in `bucketCount` buckets of span/`bucketCount` each, so a call
///   leaves the window up to one bucket (a sixtieth of the span) after the span has passed, and a window of an
///   hour holds sixty counters however many calls it sees.
struct CallWindow: Sendable {
    static let bucketCount = 60

    private struct Bucket: Sendable {
        /// Which bucket of time since 1970 this slot holds now.
        var index: Int64 = .min
        var calls = 0
        var failed = 0
        var slow = 0
    }

    private let kind: CircuitBreakerSettings.Window
    /// calls(N): one entry per call, bit 0 failed, bit 1 slow.
    private var ring: [UInt8] = []
    private var next = 0
    /// time(span): the buckets, a slot per bucket index modulo their count.
    private var buckets: [Bucket] = []
    private let bucketSeconds: Double

    private(set) var calls = 0
    private(set) var failed = 0
    private(set) var slow = 0

    init(_ kind: CircuitBreakerSettings.Window) {
        self.kind = kind
        switch kind {
        case .calls:
            bucketSeconds = 0
        case .time(let span):
            bucketSeconds = max(span.seconds / Double(Self.bucketCount), 0.001)
            buckets = Array(repeating: Bucket(), count: Self.bucketCount)
        }
    }

    mutating func add(at now: Date, failed isFailed: Bool, slow isSlow: Bool) {
        switch kind {
        case .calls(let size):
            let entry = UInt8(isFailed ? 1 : 0) | UInt8(isSlow ? 2 : 0)
            if ring.count < size {
                ring.append(entry)
            } else {
                forget(ring[next])
                ring[next] = entry
                next = (next + 1) % size
            }
            calls += 1
            failed += isFailed ? 1 : 0
            slow += isSlow ? 1 : 0
        case .time:
            expire(at: now)
            let index = bucketIndex(now)
            let slot = Int(((index % Int64(Self.bucketCount)) + Int64(Self.bucketCount)) % Int64(Self.bucketCount))
            if buckets[slot].index != index {
                clear(slot)
                buckets[slot].index = index
            }
            buckets[slot].calls += 1
            buckets[slot].failed += isFailed ? 1 : 0
            buckets[slot].slow += isSlow ? 1 : 0
            calls += 1
            failed += isFailed ? 1 : 0
            slow += isSlow ? 1 : 0
        }
    }

    /// Drops the buckets that have left the span (no-op for a count window).
    mutating func expire(at now: Date) {
        guard case .time = kind else { return }
        let oldest = bucketIndex(now) - Int64(Self.bucketCount) + 1
        for slot in buckets.indices where buckets[slot].index != .min && buckets[slot].index < oldest { clear(slot) }
    }

    mutating func removeAll() {
        ring.removeAll(keepingCapacity: true)
        next = 0
        for slot in buckets.indices { buckets[slot] = Bucket() }
        calls = 0
        failed = 0
        slow = 0
    }

    private func bucketIndex(_ date: Date) -> Int64 {
        let value = (date.timeIntervalSince1970 / bucketSeconds).rounded(.down)
        // Times are between 1970 and 9999 and a bucket is at least a millisecond, so this fits; anything else is bucket 0.
        guard value.isFinite, abs(value) < 9e18 else { return 0 }
        return Int64(value)
    }

    private mutating func forget(_ entry: UInt8) {
        calls -= 1
        failed -= Int(entry & 1)
        slow -= Int((entry >> 1) & 1)
    }

    private mutating func clear(_ slot: Int) {
        calls -= buckets[slot].calls
        failed -= buckets[slot].failed
        slow -= buckets[slot].slow
        buckets[slot] = Bucket()
    }
}

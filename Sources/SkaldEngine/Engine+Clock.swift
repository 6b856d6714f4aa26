import Foundation
import Logging
import SkaldCore

/// On a shared store, leases are kept by the database's clock, but due times, deadlines and creation times come
/// from each node's own clock. So each lease renewal also measures how far the node's clock is from the database's;
/// past `maximumClockSkew` the node says so in its log and in `/health`: its retries and deadlines fire early or
/// late by as much.
extension Engine {
    /// Past this difference a node warns about its clock.
    public static let maximumClockSkew: Duration = .seconds(1)

    /// How far this node's clock is ahead of the database's (negative: behind), as last measured; nil on a store of
    /// one engine, or before the first renewal.
    public var clockSkew: Duration? { measuredSkew.withLock { $0 }.map { Duration(secondsValue: $0) } }

    /// A warning for `/health` when the clock is off by more than `maximumClockSkew`.
    public var clockWarning: String? {
        guard let skew = measuredSkew.withLock({ $0 }), abs(skew) > Self.maximumClockSkew.seconds else { return nil }
        return "this node's clock is \(String(format: "%.1f", abs(skew)))s \(skew > 0 ? "ahead of" : "behind") the database's: the retries and deadlines it schedules fire that much \(skew > 0 ? "early" : "late") on other nodes; fix its time synchronisation (NTP)"
    }

    /// Renews the lease and measures the skew: the node's clock at the midpoint of the round trip against the database's.
    func renewMeasuringSkew(_ shared: any SharedRunStore, _ lease: Duration) async throws {
        let before = clock.now()
        let databaseNow = try await shared.renewLease(for: lease)
        let after = clock.now()
        let midpoint = before.addingTimeInterval(after.timeIntervalSince(before) / 2)
        let skew = midpoint.timeIntervalSince(databaseNow)
        let wasFine = measuredSkew.withLock { measured -> Bool in
            defer { measured = skew }
            return measured.map { abs($0) <= Self.maximumClockSkew.seconds } ?? true
        }
        if wasFine, let warning = clockWarning {
            logger.warning("\(warning)", metadata: ["node": "\(shared.node)", "skew_seconds": "\(skew)"])
        }
    }
}

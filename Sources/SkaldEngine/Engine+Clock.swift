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
    public var clockSkew: Duration? { node?.skew.map { Duration(secondsValue: $0) } }

    /// A warning for `/health` when the clock is off by more than `maximumClockSkew`.
    public var clockWarning: String? { node?.clockWarning }
}

import Foundation

extension RetryPolicy {
    /// The exponential backoff after attempt `attempt` (1-based) failed, capped by `maxInterval`, before jitter.
    public func backoff(afterAttempt attempt: Int) -> Duration {
        let exponent = Double(max(0, attempt - 1))
        let seconds = initialInterval.seconds * pow(backoffCoefficient, exponent)
        return min(Duration(secondsValue: min(seconds, 1e9)), maxInterval)
    }

    /// The delay before the next attempt after attempt `attempt` failed.
    ///
    /// - `jitterSample` is a number in `0...1` from the caller's random source; with `full` jitter the delay
    ///   is that fraction of the backoff.
    /// - A `Retry-After` from the participant is a floor, itself capped by `maxInterval`.
    public func delay(afterAttempt attempt: Int, retryAfter: Duration? = nil, jitterSample: Double) -> Duration {
        var delay = backoff(afterAttempt: attempt)
        if jitter == .full {
            delay = Duration(secondsValue: delay.seconds * min(1, max(0, jitterSample)))
        }
        if let retryAfter {
            delay = max(delay, min(retryAfter, maxInterval))
        }
        return delay
    }

    /// The smallest and largest delay after attempt `attempt` failed (without `Retry-After`).
    public func delayBounds(afterAttempt attempt: Int) -> ClosedRange<Duration> {
        let backoff = backoff(afterAttempt: attempt)
        return (jitter == .full ? .zero : backoff)...backoff
    }
}

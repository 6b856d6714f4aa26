import Foundation
import SkaldCore

/// Runs that wait long (a sleep, an approval, a long backoff) cost a row, not a task: while the engine serves, a run
/// with nothing in flight whose next move is more than `after` away is parked (its driver stops and the run is
/// marked in the store with the time it is due), and the engine takes it up again `after` before it is due.
public struct ParkingPolicy: Sendable {
    /// How far ahead a run's next move must be for it to be parked; also how early a parked run is taken up again.
    public var after: Duration
    /// How often a single-node engine looks for parked runs coming due (a shared store's nodes look as they poll).
    public var poll: Duration

    public init(after: Duration = .seconds(60), poll: Duration = .seconds(1)) {
        self.after = after
        self.poll = poll
    }
}

/// Parked runs coming due, and the base of the callback URLs the engine gives participants.
extension Engine {
    /// How many runs this engine holds in memory now (driven, or being taken up); a parked run is not one of them.
    public var runsInMemory: Int { runs.heldCount }

    /// The base of the callback URLs this engine gives participants, once known.
    public var publicURL: String? { publicURLValue.withLock { $0.url } }

    /// Sets the base of callback URLs when the configuration gave none (the server, once it knows its address).
    public func setPublicURL(_ url: String) {
        let waiters = publicURLValue.withLock { value -> [CheckedContinuation<String, Never>] in
            guard value.url == nil else { return [] }
            value.url = url
            defer { value.waiters = [] }
            return value.waiters
        }
        for waiter in waiters { waiter.resume(returning: url) }
    }

    /// The base of callback URLs, waiting until the server knows its address (a run resumed at start can be driven
    /// before the server listens on a port the system picks).
    func awaitPublicURL() async -> String {
        await withCheckedContinuation { continuation in
            let known = publicURLValue.withLock { value -> String? in
                if let url = value.url { return url }
                value.waiters.append(continuation)
                return nil
            }
            if let known { continuation.resume(returning: known) }
        }
    }

    /// Alone on its store: takes parked runs up again `parking.after` before they are due, looking every
    /// `parking.poll` (by the engine's clock), until the engine drains. (On a shared store, nodes claim them as they
    /// come due.)
    func wakeParkedRuns() async {
        let parking = configuration.parking
        var failures = 0
        /// Unparked in the store but not yet taken here: held for a moment by a driver that is stopping (it parked
        /// the run) or by an operator's action. Taken at the next look; after a crash, loaded as any unfinished run.
        var unparked: [String] = []
        while !isDraining.load(ordering: .acquiring), !Task.isCancelled {
            do {
                let due = try await store.unparkRuns(dueBy: clock.now().addingTimeInterval(parking.after.seconds), limit: 1_000)
                failures = 0
                unparked += due
                unparked = unparked.filter { runID in
                    guard claim(runID) else { return true }
                    if !submissions.send(Submission(runID: runID, fresh: nil, claimed: true)) { release(runID) }
                    return false
                }
                if due.count == 1_000 { continue }
            } catch {
                failures += 1
                logger.error("looking for parked runs that come due failed", metadata: ["error": "\(error)"])
            }
            let wait = failures == 0 ? parking.poll : Self.storeRetryDelay(after: failures)
            do { try await clock.sleep(until: clock.now().addingTimeInterval(wait.seconds)) } catch { return }
        }
    }
}

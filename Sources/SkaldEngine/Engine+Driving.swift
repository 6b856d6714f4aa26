import Foundation
import Logging
import SkaldCore
import Synchronization

/// Driving a run here until it ends, is handed to another node, or its store fails (then again, after a pause).
extension Engine {
    func driveLogged(_ runID: String, mailbox: Mailbox<DriverCommand>, source: RunSource) async {
        defer {
            release(runID)
            // No longer driven here, so no longer held up by the store either.
            storeSucceeded(runID: runID)
        }
        var source = source
        var failures = 0
        while true {
            do {
                switch source {
                case .stored(let stored):
                    _ = try await drive(stored, mailbox: mailbox)
                case .fresh(let fresh):
                    _ = try await drive(runID, fresh, mailbox: mailbox)
                case .load:
                    _ = try await drive(runID: runID, mailbox: mailbox)
                }
                return
            } catch let error as RunStoreFailure where error.underlying is RunOwnershipLost {
                let owner = (error.underlying as? RunOwnershipLost)?.owner
                logger.warning(
                    owner != nil && owner == shared?.node
                        ? "the run was claimed again since this driver read it; leaving it to the newer claim"
                        : "another node took the run over (this node did not renew its lease in time); leaving it to that node",
                    metadata: ["run_id": "\(runID)", "detail": "\(error.underlying)"])
                return
            } catch let error as RunOwnershipLost {
                logger.info("the run is driven by another node", metadata: ["run_id": "\(runID)", "detail": "\(error)"])
                return
            } catch is CannotRunHere {
                // Said once per saga when it was found; the run was handed back (or, alone on its store, waits).
                return
            } catch let error as RunStoreFailure {
                // Like a crash of this run alone: nothing was sent whose intent is not stored, every slot is back.
                // Once the store can be written again the run carries on from what it holds.
                failures += 1
                storeFailed(runID: runID, error.underlying)
                let delay = Self.storeRetryDelay(after: failures)
                logger.error(
                    "storing a transition failed; driving the run again from the database later",
                    metadata: ["run_id": "\(runID)", "error": "\(error.underlying)", "retry_in": "\(DurationText.format(delay))"])
                guard !isDraining.load(ordering: .acquiring), !Task.isCancelled else { return }
                guard await backOff(for: delay, answering: mailbox), !isDraining.load(ordering: .acquiring) else { return }
                source = .load
            } catch {
                logger.error("run stopped", metadata: ["run_id": "\(runID)", "error": "\(error)"])
                return
            }
        }
    }

    /// Waits `delay` before the run is driven again, answering the run's mailbox meanwhile: an operator's action
    /// is refused at once as unavailable (rather than waiting for the store), and a drain ends the wait.
    /// Returns false when the run should not be driven again here (drained or cancelled).
    func backOff(for delay: Duration, answering mailbox: Mailbox<DriverCommand>) async -> Bool {
        let clock = self.clock
        let until = clock.now().addingTimeInterval(delay.seconds)
        enum Event: Sendable {
            case waited
            case timerCancelled
            case command(DriverCommand?)
        }
        return await withTaskGroup(of: Event.self) { group in
            group.addTask {
                do { try await clock.sleep(until: until) } catch { return .timerCancelled }
                return .waited
            }
            var again = true
            waiting: while true {
                group.addTask { .command(await mailbox.next()) }
                switch await group.next() {
                case .waited?:
                    again = !Task.isCancelled
                    break waiting
                case nil, .timerCancelled?, .command(nil)?, .command(.drain?)?:
                    again = false
                    break waiting
                case .command(.operate(_, let reply, _)?)?:
                    reply.resume(
                        throwing: EngineError(
                            code: .unavailable,
                            message: "the database cannot store this run's progress right now (see the server's log and GET /health); try again once it can"))
                }
            }
            // A listener that took a command as the wait ended puts it back for the next driver.
            group.cancelAll()
            for await event in group {
                if case .command(let command?) = event, case .operate = command { mailbox.sendFirst(command) }
            }
            return again
        }
    }

    /// 100 ms, doubling up to 30 s.
    static func storeRetryDelay(after failures: Int) -> Duration {
        .milliseconds(min(30_000, 100 << min(failures - 1, 9)))
    }
}

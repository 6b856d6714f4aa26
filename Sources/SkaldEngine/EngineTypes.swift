import Foundation
import SkaldCore
import Synchronization

struct DriverGone: Error {}

/// The run a committed transition belongs to, as `EngineConfiguration.onEvents` gets it.
public struct PublishedRun: Sendable {
    public var id: String
    public var saga: String
    public var traceID: String?
}

/// A flag the listener sets and the claim loop takes.
final class CommandSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    func raise() { flag.store(true, ordering: .releasing) }
    /// Whether it was raised since the last call.
    func take() -> Bool { flag.exchange(false, ordering: .acquiringAndReleasing) }
}

/// A run for `Engine.run()` to drive: one just started here comes with its state, so it is not read back.
struct Submission: Sendable {
    var runID: String
    var fresh: FreshRun?
    /// A run claimed from a shared store, as it was read.
    var stored: StoredRun? = nil
    /// The run is already held for this submission (an operator's action handed it over).
    var claimed = false
}

/// What a driver starts from.
struct FreshRun: Sendable {
    var machine: SagaMachine
    var input: JSONValue
    var state: RunState
    /// When the run was created (for its duration).
    var startedAt: Date
    var trace: RunTrace?
    /// The claim its writes are fenced on (shared stores; nil otherwise).
    var epoch: Int64?
}

/// Where a driver gets the run's state from.
enum RunSource: Sendable {
    case stored(StoredRun)
    case fresh(FreshRun)
    /// Read it from the store (a run an operator's action set going again).
    case load
}

/// What the engine asks of a run's driver.
enum DriverCommand: Sendable {
    /// Apply an operator's transition to the current state, store it, and reply with the new state. With
    /// `callbacksFirst`, callbacks stored for the run and not yet applied are applied before it (so a cancel sees the
    /// callback that came before it).
    case operate(Engine.Operation, CheckedContinuation<RunState, any Error>, callbacksFirst: Bool)
    /// Stop starting attempts; return once those in flight are stored.
    case drain
}

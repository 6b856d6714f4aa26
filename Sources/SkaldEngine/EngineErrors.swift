import Foundation
import SkaldCore

/// A stored run the engine cannot drive: its stored definition no longer validates, or its state breaks a rule the
/// machine relies on (a damaged row, a crafted import). It is left undriven, every other run carries on, and an
/// operator can abandon it.
public struct UnrunnableRunError: Error, Sendable, CustomStringConvertible {
    public var runID: String
    public var problems: [String]
    /// The definition validates (only the state is at fault), so the run can still be abandoned.
    public var canBeAbandoned: Bool = false

    public var summary: String {
        canBeAbandoned
            ? "its stored state breaks the engine's rules: \(problems.joined(separator: "; "))"
            : "its stored definition does not validate: \(problems.joined(separator: "; "))"
    }

    public var description: String {
        "run \(runID) cannot be driven: \(summary)"
            + (canBeAbandoned ? "; nothing more is sent for it: settle it by hand and abandon it (skald abandon \(runID) --note …)" : "")
    }
}

/// An operator's request that the run's state does not allow, or a run that does not exist.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable {
        case notFound, conflict, unavailable
        /// The saga's stored definition no longer validates with this version of Skald.
        case definitionUnrunnable
        /// Forwarded to the node that drives the run, which took it and is still carrying it out.
        case accepted
    }
    public var code: Code
    public var message: String

    public var description: String { message }

    static func notFound(_ runID: String) -> EngineError { EngineError(code: .notFound, message: "no run with id \(runID)") }
}

/// The result of starting a run.
public struct StartedRun: Sendable {
    public var runID: String
    /// False when an earlier run with the same idempotency key was returned instead.
    public var isNew: Bool
    /// The run as it was stored when it was created (or found under its key), so that the caller answering with it
    /// need not read it back.
    public var run: StoredRun?
}

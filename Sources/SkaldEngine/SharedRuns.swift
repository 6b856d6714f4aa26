import Foundation
import SkaldCore
import Synchronization

/// A store that several engines share (PostgreSQL): each engine is a *node* that owns the runs it drives for as long
/// as it renews its lease. A node claims runs no live node owns (new ones, and those of a node whose lease expired),
/// and every write of a run's progress is fenced on owning it, so a node that lost a run (it stopped renewing, and
/// another took the run over) can neither store nor send anything more for it.
public protocol SharedRunStore: SagaStore {
    /// This node's id, unique among the nodes sharing the database.
    var node: String { get }
    /// Registers the node (first call) or extends its lease to `duration` from now, by the database's clock, and
    /// returns the database's clock at that moment (so the node can measure how far its own clock is off).
    @discardableResult
    func renewLease(for duration: Duration) async throws -> Date
    /// Lets go of every run the node owns that is still running or compensating, so other nodes take them at once,
    /// and removes the node. Called after the node stopped driving.
    func endLease() async throws
    /// Claims up to `limit` running or compensating runs that no live node owns, oldest first, and returns them,
    /// leaving out runs of the definitions (by content hash) in `excluding`: those this node cannot run.
    /// A run taken from a node whose lease expired gets a `run_taken_over` event. A parked run is claimed only when
    /// it is parked until `dueBy` or earlier, and is unparked by the claim.
    func claimRuns(limit: Int, excluding definitions: [String], dueBy: Date) async throws -> [StoredRun]
    /// Hands a run this node owns back, untouched, for another node to claim (this node cannot run it), and
    /// signals the nodes.
    func releaseRun(id: String) async throws
    /// The running or compensating runs this node owns already (a run whose driving stopped on an error stays the
    /// node's until it resumes it or its lease lapses).
    func runsHeldHere() async throws -> [StoredRun]
    /// How many running or compensating runs other nodes own.
    func runsHeldElsewhere() async throws -> Int
    /// Takes one run for an operator's action, unless a live node drives it.
    func claimRun(id: String) async throws -> RunClaim
    /// Calls `wake` whenever another node signals runs to claim or actions to carry out, until the calling task is
    /// cancelled (re-listening after a lost connection). Signals can be missed while the connection is down: the node
    /// polls too.
    /// - Throws: when the first connection cannot be made (nothing is listened to then).
    func listen(_ wake: @escaping @Sendable (NodeWakeUp) -> Void) async throws
    /// Operators' actions other nodes forwarded to this one, not yet answered.
    func pendingCommands() async throws -> [NodeCommand]
    /// Stores the answer to a forwarded action, for the node that waits for it.
    func answer(_ command: Int64, with answer: CommandAnswer) async throws
    /// Hands an operator's action to the node that drives the run and waits for its answer.
    func forward(_ action: OperatorAction, runID: String, to node: String, timeout: Duration) async throws -> CommandAnswer
}

extension SharedRunStore {
    public func claimRuns(limit: Int) async throws -> [StoredRun] { try await claimRuns(limit: limit, excluding: [], dueBy: .distantFuture) }
}

public enum RunClaim: Sendable {
    /// This node holds the run now (it may already have).
    case claimed(StoredRun)
    /// A live node drives it.
    case ownedBy(String)
    case notFound
}

public enum NodeWakeUp: Sendable {
    /// Runs may be waiting to be claimed.
    case work
    /// Another node forwarded an operator's action.
    case command
    /// These runs stored new events (on whichever node drives them): a long poll here for one of them reads them.
    case events([String])
    /// Listening (re)started: any run's events may have been missed meanwhile, so every long poll reads again.
    case eventsMayBeMissed
}

public struct NodeCommand: Sendable {
    public var id: Int64
    public var runID: String
    public var action: OperatorAction

    public init(id: Int64, runID: String, action: OperatorAction) {
        self.id = id
        self.runID = runID
        self.action = action
    }
}

/// How the node that drives a run answered a forwarded action.
public struct CommandAnswer: Sendable, Codable, Equatable {
    public enum Outcome: String, Sendable, Codable {
        case done, notFound, conflict, unavailable
        /// The owner took the action and is still carrying it out (the caller stopped waiting).
        case accepted
    }
    public var outcome: Outcome
    public var message: String

    public init(outcome: Outcome, message: String = "") {
        self.outcome = outcome
        self.message = message
    }
}

/// A write for a run this node no longer owns: another node took it over (this one stopped renewing its lease in
/// time). The run is left to that node; nothing more is sent or stored for it here.
public struct RunOwnershipLost: Error, Sendable, CustomStringConvertible {
    public var runID: String
    public var owner: String?

    public init(runID: String, owner: String?) {
        self.runID = runID
        self.owner = owner
    }

    public var description: String { "run \(runID) is driven by \(owner.map { "node \($0)" } ?? "no node") now, not by this one" }
}

/// An operator's action on a run, as it travels to the node that drives the run.
public enum OperatorAction: Sendable, Codable, Equatable {
    case cancel(reason: String, by: String)
    case retryCompensation(step: String?, by: String, note: String)
    /// Resolves a failed compensation, or a stuck run's failed step, by hand (`SagaMachine.resolve`). The name is
    /// the one nodes already send; `response` (JSON text, for the steps after a forward step) was added later and
    /// is absent from older nodes' actions.
    case resolveCompensation(step: String, note: String, by: String, response: String? = nil)
    case resume(note: String, by: String)
    case abandon(note: String, by: String)
    /// Undoes a completed run (`SagaMachine.revert`): a person's, or a parent run's undoing the step that ran it.
    case revert(note: String, by: String)
    /// What a person retries, decided on the state it is applied to: the failed compensations of a run in
    /// compensation_failed (`retryCompensation`), or the failed steps of a stuck run (`resume`).
    case retry(step: String?, by: String, note: String)
    /// A person's decision on a step waiting for approval (`SagaMachine.decide`).
    case decide(step: String, approve: Bool, by: String, note: String)
    /// A callback a participant posted (already stored), for the run's driver to apply (`SagaMachine.callbackReceived`):
    /// `status` is succeeded, failed or heartbeat; `output` is JSON text.
    case callback(step: Int, attempt: Int, status: String, output: String?, error: String?, receivedAt: Double)

    /// Whether callbacks stored for the run and not yet applied are applied before the action: for every action but
    /// a callback's own hand-over and abandon (which ends the run whatever was posted), so that, say, a cancel that
    /// comes after a participant's `200` compensates a step that succeeded rather than one whose outcome is unknown.
    var appliesStoredCallbacksFirst: Bool {
        switch self {
        case .callback, .abandon: false
        default: true
        }
    }

    /// Abandoning sends nothing, so it is allowed on a run whose stored state the engine cannot drive.
    var isAbandon: Bool {
        if case .abandon = self { return true }
        return false
    }

    /// The transition the action makes from `state`.
    /// - Throws: `EngineError` `.conflict` when the state does not allow it, saying why.
    func transition(runID: String, machine: SagaMachine, state: RunState, at now: Date) throws -> SagaMachine.Transition {
        switch self {
        case .cancel(let reason, let who):
            guard let transition = machine.cancel(state, reason: reason, by: who, at: now) else {
                let pivot = machine.saga.pivot.map { machine.saga.steps[$0].name } ?? ""
                throw EngineError(
                    code: .conflict,
                    message: state.status.isTerminal
                        ? "run \(runID) already finished (\(state.status.rawValue)); there is nothing to cancel"
                        : state.status == .stuck
                            ? "run \(runID) is stuck after its pivot \(pivot), the point of no return: it can only go forward; fix the step and retry, or abandon the run"
                            : state.status == .running && machine.isAtOrPastPivot(state)
                                ? "run \(runID) has reached its pivot \(pivot), the point of no return (its call is in flight, succeeded, or may have been applied): it can no longer be undone, only finished"
                                : "run \(runID) is already compensating; it cannot be cancelled again")
            }
            return transition
        case .retryCompensation(let step, let who, let note):
            guard let transition = machine.retryCompensation(state, step: step, by: who, note: note, at: now) else {
                throw EngineError(
                    code: .conflict,
                    message: state.status == .compensationFailed
                        ? "step \(step ?? "?") of run \(runID) has no failed compensation; failed: \(Engine.failedCompensations(state))"
                        : "run \(runID) is \(state.status.rawValue); only a run in compensation_failed (its failed compensations) or stuck (its failed steps after the pivot) can be retried")
            }
            return transition
        case .resolveCompensation(let step, let note, let who, let responseText):
            let response = try responseText.map { text in
                do {
                    return try JSONParser.parse(text)
                } catch {
                    throw EngineError(code: .conflict, message: "the response to record for \(step) is not JSON: \(error)")
                }
            }
            guard let transition = machine.resolve(state, step: step, note: note, by: who, response: response, at: now) else {
                throw EngineError(
                    code: .conflict, message: Self.resolveRefusal(runID: runID, step: step, machine: machine, state: state, response: response))
            }
            return transition
        case .resume(let note, let who):
            guard let transition = machine.resume(state, by: who, note: note, at: now) else {
                throw EngineError(code: .conflict, message: "run \(runID) is \(state.status.rawValue); only a stuck run can be resumed")
            }
            return transition
        case .retry(let step, let who, let note):
            let action: OperatorAction = state.status == .stuck ? .resume(note: note, by: who) : .retryCompensation(step: step, by: who, note: note)
            return try action.transition(runID: runID, machine: machine, state: state, at: now)
        case .decide(let step, let approve, let who, let note):
            guard let transition = machine.decide(state, step: step, approve: approve, by: who, note: note, at: now) else {
                throw EngineError(code: .conflict, message: Self.decisionRefusal(runID: runID, step: step, machine: machine, state: state))
            }
            return transition
        case .callback(let step, let attempt, let status, let output, let error, let receivedAt):
            let signal: CallbackSignal
            switch status {
            case "succeeded": signal = .succeeded(output: (try? JSONParser.parse(output ?? "null")) ?? .null)
            case "failed": signal = .failed(error: error ?? "")
            default: signal = .heartbeat
            }
            guard
                let transition = machine.callbackReceived(
                    state, step: step, attempt: attempt, signal: signal, receivedAt: Date(timeIntervalSince1970: receivedAt), at: now)
            else {
                // Stored already: applied when the step's answer comes, or nothing to do.
                throw EngineError(code: .conflict, message: "the callback changes nothing in run \(runID) now")
            }
            return transition
        case .revert(let note, let who):
            guard let transition = machine.revert(state, by: who, note: note, at: now) else {
                throw EngineError(
                    code: .conflict,
                    message: state.status != .completed
                        ? "run \(runID) is \(state.status.rawValue); only a completed run can be reverted (a running one is cancelled)"
                        : "run \(runID) is of a saga with a pivot, \(machine.saga.steps[machine.saga.pivot ?? 0].name): past its point of no return it cannot be undone")
            }
            return transition
        case .abandon(let note, let who):
            guard let transition = machine.abandon(state, by: who, note: note, at: now) else {
                throw EngineError(code: .conflict, message: "run \(runID) already ended (\(state.status.rawValue)); there is nothing to abandon")
            }
            return transition
        }
    }
}

extension OperatorAction {
    /// Why `step` of the run cannot be approved or rejected, naming the steps that can.
    static func decisionRefusal(runID: String, step: String, machine: SagaMachine, state: RunState) -> String {
        let waiting = machine.awaitingDecision(state).map { state.steps[$0].name }
        let instead = waiting.isEmpty ? "no step of it waits for a decision now" : "waiting for a decision: \(waiting.joined(separator: ", "))"
        guard let index = state.steps.firstIndex(where: { $0.name == step }) else {
            return "run \(runID) has no step \(step)\(Suggestion.didYouMean(step, in: state.steps.map(\.name))); \(instead)"
        }
        let stepState = state.steps[index]
        if machine.definition(of: index, in: state).action.kind != .approval {
            return "step \(step) of run \(runID) is not an approval; \(instead)"
        }
        if let resolution = stepState.resolution, stepState.status != .waiting {
            let who = resolution.by.isEmpty ? "an operator" : resolution.by
            return "step \(step) of run \(runID) was already decided by \(who) (it is \(stepState.status.rawValue)); \(instead)"
        }
        return "step \(step) of run \(runID) is \(stepState.status.rawValue), not waiting for a decision (the run is \(state.status.rawValue)); \(instead)"
    }

    /// Why `step` of the run cannot be resolved, naming what can be done instead.
    static func resolveRefusal(runID: String, step: String, machine: SagaMachine, state: RunState, response: JSONValue? = nil) -> String {
        let failedForward = state.steps.filter { $0.failedForward && $0.elements == nil }.map(\.name)
        guard let index = state.steps.firstIndex(where: { $0.name == step }) else {
            return "run \(runID) has no step \(step); its steps are \(state.steps.map(\.name).joined(separator: ", "))"
        }
        if let range = state.steps[index].elements {
            let items = state.steps[range].filter { $0.failedForward || $0.status == .compensationFailed }.map(\.name)
            return "\(step) runs once per item, and each item is resolved on its own: resolve \(items.isEmpty ? "\(step)[0] …" : items.joined(separator: ", ")) (skald resolve \(runID) --step '\(items.first ?? "\(step)[0]")' --note …)"
        }
        switch state.status {
        case .compensationFailed:
            if response != nil && state.steps[index].status == .compensationFailed {
                return "a response is recorded only for a stuck run's step, for the steps after it to read; resolving the compensation of \(step) takes a note alone"
            }
            return "step \(step) of run \(runID) has no failed compensation; failed: \(Engine.failedCompensations(state))"
        case .stuck:
            let status = state.steps[index].status
            guard state.steps[index].failedForward else {
                return "step \(step) of run \(runID) is \(status.rawValue), not failed; the failed step\(failedForward.count == 1 ? "" : "s") of this stuck run: \(failedForward.joined(separator: ", "))"
            }
            let readers = machine.stepsReadingResponse(of: index, in: state)
            if !readers.isEmpty {
                return "\(readers.joined(separator: ", ")) read\(readers.count == 1 ? "s" : "") the response of \(step) ({{steps.\(step).response…}}): give the response they read, as the participant would have answered it (skald resolve --response JSON, or \"response\" in the API)"
            }
            let pivot = machine.saga.pivot.map { machine.saga.steps[$0].name } ?? ""
            return "step \(step) of run \(runID) failed before the pivot \(pivot), whose outcome is unknown: resolve the pivot first (or retry it), or cancel the run"
        default:
            return "run \(runID) is \(state.status.rawValue); only a failed compensation of a run in compensation_failed, or a failed step of a stuck run, can be resolved by hand"
        }
    }
}

/// How a node shares a database with others.
public struct NodeConfiguration: Sendable {
    /// How long a node's claim on its runs lasts without renewal; another node takes them over after it.
    public var lease: Duration
    /// How often a node looks for runs to claim when nothing woke it (new runs wake it at once; a node whose lease
    /// expired does not, so this bounds how late its runs are taken over after the lease).
    public var pollInterval: Duration
    /// The most runs a node drives at once; it claims more only below this.
    public var maxRuns: Int
    /// How long an operator's action forwarded to the node driving the run may take.
    public var commandTimeout: Duration

    public init(lease: Duration = .seconds(10), pollInterval: Duration? = nil, maxRuns: Int = 10_000, commandTimeout: Duration = .seconds(10)) {
        self.lease = lease
        // Half a second at most: a lapsed node's runs are taken over within the lease plus the poll and the claims,
        // and the claims of a few hundred runs take a fraction of a second, so within the lease plus one second.
        self.pollInterval = pollInterval ?? min(.milliseconds(500), lease / 8)
        self.maxRuns = maxRuns
        self.commandTimeout = commandTimeout
    }

    /// How many runs one claim takes at most, so that nodes woken together share a burst of new runs.
    public static let claimBatch = 16
}

/// Wakes one waiter when rung; a ring with nobody waiting is kept for the next wait.
final class Doorbell: Sendable {
    /// Times the waits' timeouts (the engine's injected clock).
    let clock: any EngineClock

    init(clock: any EngineClock) {
        self.clock = clock
    }

    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns true when rung (or rung since the last wait), false after `timeout` or when the task is cancelled.
    @discardableResult
    func wait(upTo timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.waitForRing()
                return !Task.isCancelled
            }
            group.addTask {
                try? await self.clock.sleep(until: self.clock.now().addingTimeInterval(timeout.seconds))
                return false
            }
            let rung = await group.next() ?? false
            group.cancelAll()
            return rung
        }
    }

    private func waitForRing() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.rung || Task.isCancelled {
                        state.rung = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}

import Foundation

/// One entry of a run's history. The history is append-only; run and step rows are derived from it.
public struct RunEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case runStarted = "run_started"
        case attemptStarted = "attempt_started"
        case attemptResent = "attempt_resent"
        case attemptSucceeded = "attempt_succeeded"
        case attemptFailed = "attempt_failed"
        case stepSucceeded = "step_succeeded"
        case stepFailed = "step_failed"
        case compensationStarted = "compensation_started"
        case compensationSkipped = "compensation_skipped"
        case stepCompensated = "step_compensated"
        case compensationFailed = "compensation_failed"
        case runCompleted = "run_completed"
        case runCompensated = "run_compensated"
        case runCompensationFailed = "run_compensation_failed"
        case runCancelled = "run_cancelled"
        case compensationRetried = "compensation_retried"
        case compensationResolved = "compensation_resolved"
        /// An operator recorded that a step that failed for good was done by hand; the run goes on from it.
        case stepResolved = "step_resolved"
        case deadlinePassed = "deadline_passed"
        case pivotPassed = "pivot_passed"
        case runStuck = "run_stuck"
        case runResumed = "run_resumed"
        case runAbandoned = "run_abandoned"
        /// On a shared database: another node took the run over after its node stopped renewing its lease.
        case runTakenOver = "run_taken_over"
        /// `skald import` carried the run over from another Skald database.
        case runImported = "run_imported"
        /// A step's attempt was held back because its participant's circuit is open; it is not counted.
        case participantWaiting = "participant_waiting"
        /// A step that waited on its participant's circuit is sent again.
        case participantResumed = "participant_resumed"
        /// The stored run breaks a rule the engine relies on (a damaged row, a crafted import): it is not driven,
        /// and waits for an operator to abandon it.
        case runUnrunnable = "run_unrunnable"
        /// A step began to wait: for a person's decision, or for a time.
        case waitStarted = "wait_started"
        /// A person approved a waiting step; it succeeded.
        case stepApproved = "step_approved"
        /// A person rejected a waiting step, or nobody decided before its timeout; it failed for good.
        case stepRejected = "step_rejected"
        /// A sleep came to its end; the step succeeded.
        case sleepEnded = "sleep_ended"
        /// A callback step's participant accepted the request; the step waits for its callback.
        case callbackAccepted = "callback_accepted"
        /// The participant's callback came (succeeded or failed).
        case callbackReceived = "callback_received"
        /// A step's `when` was false: it was skipped.
        case stepSkipped = "step_skipped"
        /// A `forEach` step worked out its items and starts their calls.
        case itemsStarted = "items_started"
        /// A step's child run stopped for a person (compensation_failed, stuck, abandoned): the step waits.
        case childNeedsOperator = "child_needs_operator"
        /// An operator (or a parent run undoing the step that ran it) reverted a completed run.
        case runReverted = "run_reverted"
        /// The participant said it is still working; the heartbeat deadline moved.
        case callbackHeartbeat = "callback_heartbeat"
        /// No callback (or heartbeat) came in time: the outcome is unknown.
        case callbackTimedOut = "callback_timed_out"
    }

    public var at: Date
    public var kind: Kind
    public var step: String?
    public var phase: Phase?
    public var attempt: Int?
    /// A sentence for people.
    public var message: String
    /// Structured detail: HTTP status, duration, retry delay, error.
    public var data: JSONValue

    public init(
        at: Date, kind: Kind, step: String? = nil, phase: Phase? = nil, attempt: Int? = nil, message: String,
        data: JSONValue = .object([:])
    ) {
        self.at = at
        self.kind = kind
        self.step = step
        self.phase = phase
        self.attempt = attempt
        self.message = message
        self.data = data
    }
}

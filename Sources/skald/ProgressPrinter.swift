import Foundation
import SkaldCore
import Synchronization

/// Prints a run's progress as it is committed: one line per attempt, plus the turns of the story.
final class ProgressPrinter: Sendable {
    struct Style: Sendable {
        var colour: Bool

        func paint(_ text: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
        func green(_ text: String) -> String { paint(text, "32") }
        func red(_ text: String) -> String { paint(text, "31") }
        func yellow(_ text: String) -> String { paint(text, "33") }
        func dim(_ text: String) -> String { paint(text, "2") }
        func bold(_ text: String) -> String { paint(text, "1") }

        /// Colour only on a terminal, and never when NO_COLOR is set.
        static var forStandardOutput: Style {
            let environment = ProcessInfo.processInfo.environment
            let colour = isatty(STDOUT_FILENO) == 1 && environment["NO_COLOR"] == nil && environment["TERM"] != "dumb"
            return Style(colour: colour)
        }
    }

    let style: Style
    let indent: String
    let showRunID: Bool
    private let nameWidth: Mutex<Int>

    init(style: Style = .forStandardOutput, indent: String = "  ", showRunID: Bool = false, stepNames: [String] = []) {
        self.style = style
        self.indent = indent
        self.showRunID = showRunID
        nameWidth = Mutex(stepNames.map { $0.count + 7 }.max() ?? 20)
    }

    func handle(runID: String, events: [RunEvent]) {
        var lines: [String] = []
        for event in events {
            if let line = line(for: event, runID: runID) { lines.append(line) }
        }
        guard !lines.isEmpty else { return }
        print(lines.joined(separator: "\n"))
        fflush(nil)
    }

    func line(for event: RunEvent, runID: String) -> String? {
        let prefix = indent + (showRunID ? style.dim(String(runID.suffix(8))) + " " : "")
        switch event.kind {
        case .attemptSucceeded, .attemptFailed:
            let name = event.phase == .compensate ? "\(event.step ?? "?") (undo)" : event.step ?? "?"
            let width = nameWidth.withLock { width in
                width = max(width, name.count)
                return width
            }
            let maxAttempts = event.data["maxAttempts"]?.intValue.map { "/\($0)" } ?? ""
            let attempt = "#\(event.attempt ?? 0)\(maxAttempts)"
            let took = event.data["durationMs"]?.intValue.map { DurationText.format(.milliseconds($0)) } ?? ""
            let padded = name.padding(toLength: width, withPad: " ", startingAt: 0)
            let attemptColumn = attempt.padding(toLength: 6, withPad: " ", startingAt: 0)
            if event.kind == .attemptSucceeded {
                let status = event.data["status"]?.intValue.map { "HTTP \($0)" } ?? ""
                return "\(prefix)\(padded) \(attemptColumn) \(style.green("ok    ")) \(status.padding(toLength: 10, withPad: " ", startingAt: 0)) \(took.leftPadded(6))"
            }
            var reason = event.data["error"]?.stringValue ?? "failed"
            if reason.count > 90 { reason = String(reason.prefix(89)) + "…" }
            let next: String
            if let retry = event.data["retryInMs"]?.intValue {
                next = style.yellow("retry in \(DurationText.format(.milliseconds(retry)))")
            } else if event.data["retryable"]?.boolValue == false {
                next = style.red("not retryable")
            } else {
                next = style.red("giving up")
            }
            return "\(prefix)\(padded) \(attemptColumn) \(style.red("failed")) \(reason)  \(style.dim(took))  \(next)"
        case .attemptResent:
            return "\(prefix)\(style.yellow("resend")) \(event.message)"
        case .participantWaiting:
            return "\(prefix)\(style.yellow("wait")) \(event.message)"
        case .participantResumed:
            return "\(prefix)\(style.green("resume")) \(event.message)"
        case .runTakenOver:
            return "\(prefix)\(style.yellow("node")) \(event.message)"
        case .waitStarted, .sleepEnded, .callbackAccepted, .callbackHeartbeat, .callbackReceived, .callbackTimedOut:
            return "\(prefix)\(style.yellow("wait")) \(event.message)"
        case .stepSkipped:
            return "\(prefix)\(style.yellow("skip")) \(event.message)"
        case .stepApproved:
            return "\(prefix)\(style.green("yes")) \(event.message)"
        case .stepRejected:
            return "\(prefix)\(style.red("no")) \(event.message)"
        case .stepFailed where event.data["outcome"] == "unknown":
            // Why a step that failed is undone (or why it is not): its request may have been applied.
            return "\(prefix)\(style.yellow("?")) \(event.message)"
        case .compensationStarted, .compensationSkipped, .compensationFailed, .deadlinePassed, .runStuck, .pivotPassed,
            .compensationResolved, .stepResolved, .compensationRetried, .runResumed, .runCancelled, .runAbandoned:
            return "\(prefix)\(style.yellow("↩")) \(event.message)"
        default:
            return nil
        }
    }

    /// The closing lines for a finished (or stopped) run.
    func summary(_ state: RunState, elapsed: Duration) -> String {
        let took = DurationText.format(elapsed)
        switch state.status {
        case .completed:
            // The saga's steps; the items of a forEach step are counted apart.
            let steps = state.steps.filter { $0.element == nil }
            let items = state.steps.count - steps.count
            let byHand = state.steps.filter { $0.status == .resolved }.map(\.name)
            let skipped = steps.filter { $0.status == .skipped }.map(\.name)
            let ran = steps.count - skipped.count
            return "\(style.green(style.bold("completed"))) in \(took): \(skipped.isEmpty ? "all " : "")\(ran) step\(ran == 1 ? "" : "s") "
                + (byHand.isEmpty ? "succeeded" : "done, \(byHand.joined(separator: ", ")) by hand")
                + (items == 0 ? "" : " (\(items) item call\(items == 1 ? "" : "s"))")
                + (skipped.isEmpty ? "" : "; skipped by their condition: \(skipped.joined(separator: ", "))")
        case .compensated:
            // A forEach step is undone through its items, which are named.
            let undone = state.steps.filter { $0.status.isUndone && $0.elements == nil }.map {
                $0.status == .compensationResolved ? "\($0.name) (by hand)" : $0.outcomeUnknown ? "\($0.name) (outcome unknown)" : $0.name
            }
            let leftUnknown = state.steps.filter { $0.status == .outcomeUnknown }.map(\.name)
            let failure = state.failure?.summary ?? "a step failed"
            let tail = undone.isEmpty ? "nothing needed undoing" : "undone in reverse: \(undone.reversed().joined(separator: ", "))"
            return "\(style.yellow(style.bold("compensated"))) in \(took): \(failure); \(tail)"
                + (leftUnknown.isEmpty ? "" : "; outcome unknown and not undone, check at the participant: \(leftUnknown.joined(separator: ", "))")
        case .compensationFailed:
            let failure = state.compensationFailure.map { "the compensation of \($0.summary)" } ?? "a compensation failed"
            let left = state.steps.filter { $0.status == .succeeded && $0.elements == nil }.map(\.name)
            return "\(style.red(style.bold("compensation_failed"))) after \(took): \(failure)"
                + (left.isEmpty ? "" : "; still to undo: \(left.reversed().joined(separator: ", "))")
                + ". A person decides: with `skald serve` on this database, `skald retry \(state.id)` tries it again, or"
                + " `skald resolve \(state.id) --step \(state.compensationFailure?.step ?? "STEP") --note \"what you did\"` records it was undone by hand."
        case .stuck where state.stuck?.isOutcomeUnknown == true:
            let pivot = state.stuck?.step ?? "the pivot"
            return "\(style.red(style.bold("stuck"))) after \(took): the outcome of the pivot \(pivot) is unknown (\(state.stuck?.reason ?? "")). Find out at the participant whether it was applied; then, with `skald serve` on this database, `skald retry \(state.id)` sends it again with the same idempotency key, `skald resolve \(state.id) --step \(pivot) --note \"what you found\"` records that it was applied and goes on, or `skald cancel \(state.id)` compensates the steps before it."
        case .stuck:
            let stuck = (state.stuck?.summary ?? "a step failed") + " after the pivot"
            return "\(style.red(style.bold("stuck"))) after \(took): \(stuck). The saga cannot turn back: with `skald serve` on this database, fix the step and `skald retry \(state.id)`, or do its work by hand and `skald resolve \(state.id) --step \(state.stuck?.step ?? "STEP") --note \"what you did\"`."
        case .abandoned:
            return "\(style.bold("abandoned")) after \(took): an operator stopped it without undoing anything more (see its history)"
        case .running, .compensating:
            return "\(style.yellow(state.status.rawValue)) after \(took): run `skald resume` to continue"
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

import ArgumentParser
import Foundation
import SkaldAPI
import SkaldCore

/// Follows a run's events with long polls and prints them as `skald run` does.
struct Watcher {
    let api: SkaldClient
    let json: Bool

    func follow(_ runID: String) async throws {
        let style = ProgressPrinter.Style.forStandardOutput
        let printer = ProgressPrinter(style: style)
        var after: Int64 = 0
        let started = ContinuousClock.now
        /// Set once the run reached a state that ends the watch: one more read without waiting takes what is left.
        var ending = false
        while true {
            let answer: Answer<EventsPage>
            do {
                answer = try await api.get(EventsPage.self, "/v1/runs/\(urlComponent(runID))/events?after=\(after)\(ending ? "" : "&wait=25s")")
            } catch let failure as APIFailure where failure.status == 429 {
                // The server has as many long polls waiting as it allows: ask again in a moment.
                try await Task.sleep(for: .seconds(1))
                continue
            }
            let page = answer.value
            for (event, shown) in zip(page.events, answer.json["events"]?.arrayValue ?? []) {
                if json {
                    print(shown.jsonText)
                } else if let decoded = RunEvent(event) {
                    if let line = printer.line(for: decoded, runID: runID) {
                        print(line)
                    } else if decoded.kind != .attemptStarted && decoded.kind != .stepSucceeded {
                        print("  \(style.dim(decoded.message))")
                    }
                }
            }
            fflush(nil)
            after = page.lastSequence
            let status = page.runStatus
            let hadEvents = !page.events.isEmpty
            // The watch ends at an end state, and at a state only an operator moves on from (stuck): each has its
            // exit code. A run the engine cannot drive ends it too.
            guard let status, status.isTerminal || status.needsOperator else {
                ending = false
                if !hadEvents, let unrunnable = try await api.get(RunView.self, "/v1/runs/\(urlComponent(runID))").value.unrunnable {
                    if !json { print("run \(runID) cannot be driven: \(unrunnable.message)") }
                    throw Exit.failure
                }
                continue
            }
            if hadEvents && !ending {
                ending = true
                continue
            }
            if !json {
                let run = try await api.get(RunView.self, "/v1/runs/\(urlComponent(runID))").value
                print("run \(runID) \(status.painted(style)) (watched for \(DurationText.format(ContinuousClock.now - started)))"
                    + Self.failureText(run))
            }
            let code = Exit.forStatus(status)
            if code != .success { throw code }
            return
        }
    }

    /// Stuck because the pivot's outcome is unknown (SagaMachine records the reason so).
    static func isUndecidedPivot(_ stuck: FailureView) -> Bool {
        stuck.reason.hasPrefix(RunFailure.outcomeUnknownPrefix)
    }

    static func failureText(_ run: RunView) -> String {
        let id = run.id
        if run.runStatus == .abandoned {
            let left = AbandonCommand.notUndone(run)
            return ": abandoned by an operator; nothing more is sent or undone" + (left.isEmpty ? "" : " (still applied: \(left.joined(separator: ", ")))")
        }
        if let stuck = run.stuck {
            let step = stuck.step ?? "?"
            if isUndecidedPivot(stuck) {
                return ": the outcome of the pivot \(step) is unknown (\(stuck.reason)); find out at the participant, then `skald retry \(id)`, `skald resolve \(id) --step \(step) --note TEXT` (it was applied) or `skald cancel \(id)`"
            }
            return ": \(step) failed after the pivot (\(stuck.reason)); fix it, then `skald retry \(id)`, or do its work by hand and `skald resolve \(id) --step \(step) --note TEXT`"
        }
        if let failure = run.compensationFailure {
            let step = failure.step ?? "?"
            return ": the compensation of \(step) failed (\(failure.reason)); `skald retry \(id)` once fixed, or undo it by hand and `skald resolve \(id) --step \(step) --note TEXT`"
        }
        if let failure = run.failure {
            return ": " + (failure.step.map { "\($0) failed (\(failure.reason))" } ?? failure.reason)
        }
        return ""
    }
}

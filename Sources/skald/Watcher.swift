import ArgumentParser
import Foundation
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
            let page: JSONValue
            do {
                page = try await api.get("/v1/runs/\(urlComponent(runID))/events?after=\(after)\(ending ? "" : "&wait=25s")")
            } catch let failure as APIFailure where failure.status == 429 {
                // The server has as many long polls waiting as it allows: ask again in a moment.
                try await Task.sleep(for: .seconds(1))
                continue
            }
            for event in page["events"]?.arrayValue ?? [] {
                if json {
                    print(event.jsonText)
                } else if let decoded = RunEvent(json: event) {
                    if let line = printer.line(for: decoded, runID: runID) {
                        print(line)
                    } else if decoded.kind != .attemptStarted && decoded.kind != .stepSucceeded {
                        print("  \(style.dim(decoded.message))")
                    }
                }
            }
            fflush(nil)
            after = page["lastSequence"]?.intValue ?? after
            let status = page["status"]?.stringValue.flatMap(RunStatus.init(rawValue:))
            let hadEvents = !(page["events"]?.arrayValue?.isEmpty ?? true)
            // The watch ends at an end state, and at a state only an operator moves on from (stuck): each has its
            // exit code. A run the engine cannot drive ends it too.
            guard let status, status.isTerminal || status.needsOperator else {
                ending = false
                if !hadEvents, let unrunnable = try await api.get("/v1/runs/\(urlComponent(runID))")["unrunnable"], unrunnable != .null {
                    if !json { print("run \(runID) cannot be driven: \(unrunnable["message"]?.stringValue ?? "")") }
                    throw Exit.failure
                }
                continue
            }
            if hadEvents && !ending {
                ending = true
                continue
            }
            if !json {
                let run = try await api.get("/v1/runs/\(urlComponent(runID))")
                print("run \(runID) \(status.painted(style)) (watched for \(DurationText.format(ContinuousClock.now - started)))"
                    + Self.failureText(run))
            }
            let code = Exit.forStatus(status)
            if code != .success { throw code }
            return
        }
    }

    /// Stuck because the pivot's outcome is unknown (SagaMachine records the reason so).
    static func isUndecidedPivot(_ stuck: JSONValue) -> Bool {
        stuck["reason"]?.stringValue?.hasPrefix(RunFailure.outcomeUnknownPrefix) == true
    }

    static func failureText(_ run: JSONValue) -> String {
        if run["status"] == "abandoned" {
            let left = AbandonCommand.notUndone(run)
            return ": abandoned by an operator; nothing more is sent or undone" + (left.isEmpty ? "" : " (still applied: \(left.joined(separator: ", ")))")
        }
        if let stuck = run["stuck"], stuck != .null, isUndecidedPivot(stuck) {
            let id = run["id"]?.stringValue ?? ""
            return ": the outcome of the pivot \(stuck["step"]?.stringValue ?? "?") is unknown (\(stuck["reason"]?.stringValue ?? "")); find out at the participant, then `skald retry \(id)`, `skald resolve \(id) --step \(stuck["step"]?.stringValue ?? "?") --note TEXT` (it was applied) or `skald cancel \(id)`"
        }
        if let stuck = run["stuck"], stuck != .null {
            let id = run["id"]?.stringValue ?? "", step = stuck["step"]?.stringValue ?? "?"
            return ": \(step) failed after the pivot (\(stuck["reason"]?.stringValue ?? "")); fix it, then `skald retry \(id)`, or do its work by hand and `skald resolve \(id) --step \(step) --note TEXT`"
        }
        if let failure = run["compensationFailure"], failure != .null {
            let id = run["id"]?.stringValue ?? "", step = failure["step"]?.stringValue ?? "?"
            return ": the compensation of \(step) failed (\(failure["reason"]?.stringValue ?? "")); `skald retry \(id)` once fixed, or undo it by hand and `skald resolve \(id) --step \(step) --note TEXT`"
        }
        if let failure = run["failure"], failure != .null {
            return ": " + (failure["step"]?.stringValue.map { "\($0) failed (\(failure["reason"]?.stringValue ?? ""))" } ?? (failure["reason"]?.stringValue ?? ""))
        }
        return ""
    }
}

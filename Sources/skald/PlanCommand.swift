import ArgumentParser
import Foundation
import SkaldCore
import SkaldEngine

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what a saga will do, without running anything: waves, retry schedules, worst case, compensation order.",
        discussion: "Worked out by the engine's own state machine with scripted outcomes, so it is what the engine would do.")

    @Argument(help: "The saga definition file (JSON).")
    var file: String

    @Option(name: .long, help: "Only show what happens when this step fails for good (default: every step).")
    var failAt: String?

    @Flag(name: .long, help: "Print the plan as JSON.")
    var json = false

    @Option(
        name: .customLong("when"), parsing: .singleValue,
        help: "Script a condition, as STEP=skipped or STEP=runs (its when), STEP=refused (its failWhen), STEP=pending (its retryWhen); repeat for several. The plan then shows the run as it goes that way.")
    var when: [String] = []

    @Option(name: .long, help: "The server's participants file, to show the settings a server started with it would use.")
    var participants: String?

    func run() throws {
        let saga = try DefinitionFile.loadOrExit(file)
        let serverWide = try ExecutionOptions.parse(participants.map { ["--participants", $0] } ?? []).loadParticipants()
        if let failAt, saga.stepIndex(named: failAt) == nil {
            printError("error: --fail-at \(failAt): the saga has no such step; its steps are \(saga.steps.map(\.name).joined(separator: ", "))")
            throw Exit.invalid
        }
        var script: [(step: String, decision: PlannedDecision)] = []
        for entry in when {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let decision = PlannedDecision(rawValue: parts[1]) else {
                printError("error: --when \(entry): write STEP=OUTCOME, where OUTCOME is skipped or runs (the step's when), refused (its failWhen) or pending (its retryWhen); for example --when kyc=refused")
                throw Exit.invalid
            }
            script.append((parts[0], decision))
        }
        if let problem = Planner.problem(with: script, in: saga) {
            printError("error: \(problem)")
            throw Exit.invalid
        }
        let scripted = script.isEmpty ? nil : Planner.plan(saga, script: script)
        let plan = Planner.plan(saga, failAt: failAt.map { [$0] })
        let callers = PlanText.participants(saga, serverWide: serverWide)
        if json {
            guard case .object(var members) = PlanText.json(plan) else { return }
            members["participants"] = .array(
                callers.map { entry in
                    [
                        "name": .string(entry.name), "from": .string(entry.serverWide ? "server" : "saga"),
                        "steps": .array(entry.steps.map(JSONValue.string)), "summary": .string(entry.settings.summary),
                    ]
                })
            if let scripted { members["scripted"] = PlanText.json(scripted) }
            print(JSONValue.object(members).prettyText)
            return
        }
        var text = PlanText.text(plan, file: file)
        if let scripted { text += "\n\n" + PlanText.text(scripted, saga: saga) }
        if !callers.isEmpty {
            text += "\n\nParticipants (an open circuit holds a step's attempts back without counting them; the worst cases above leave that wait out):"
            for entry in callers {
                let from = entry.serverWide ? "from --participants" : "from the saga"
                let called = entry.steps.isEmpty ? "called by no step" : "called by \(entry.steps.joined(separator: ", "))"
                text += "\n  \(entry.name) (\(from)), \(called): \(entry.settings.summary)"
            }
        }
        let byURL = serverWide.filter { $0.value.baseURL != nil && !callers.map(\.name).contains($0.key) }.sorted { $0.key < $1.key }
        if !byURL.isEmpty {
            text += "\n\nServer-wide participants that take the calls of steps naming none, by the start of their URL (checked when each call is sent):"
            for (name, settings) in byURL { text += "\n  \(name): \(settings.baseURL!) — \(settings.summary)" }
        }
        print(text)
    }
}

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Print a saga as a Mermaid flowchart: forward edges solid, compensations dotted.",
        discussion: "Paste the output into any Mermaid renderer (GitHub renders ```mermaid blocks).")

    @Argument(help: "The saga definition file (JSON).")
    var file: String

    func run() throws {
        print(PlanText.mermaid(try DefinitionFile.loadOrExit(file)))
    }
}

enum PlanText {
    /// Each participant the saga's steps name, with the settings in force and the steps that call it.
    static func participants(_ saga: SagaDefinition, serverWide: [String: ParticipantSettings])
        -> [(name: String, settings: ParticipantSettings, serverWide: Bool, steps: [String])]
    {
        var out: [(name: String, settings: ParticipantSettings, serverWide: Bool, steps: [String])] = []
        for (index, step) in saga.steps.enumerated() {
            guard let found = ParticipantRegistry.settings(for: saga, step: index, serverWide: serverWide) else { continue }
            if let at = out.firstIndex(where: { $0.name == found.name }) {
                out[at].steps.append(step.name)
            } else {
                out.append((found.name, found.settings, found.serverWide, [step.name]))
            }
        }
        for name in saga.participants.keys.sorted() where !out.contains(where: { $0.name == name }) {
            out.append((name, serverWide[name] ?? saga.participants[name]!, serverWide[name] != nil, []))
        }
        return out
    }

    /// "waits for a person up to 48h", "sleeps 15m", "sleeps until a time the run gives (not counted)".
    static func wait(_ wait: SagaPlan.WaitSchedule?) -> String {
        guard let wait else { return "" }
        switch (wait.kind, wait.longest) {
        case (.approval, let longest?): return "waits for a person's approval up to \(DurationText.format(longest)) (no decision by then is a rejection)"
        case (.approval, nil): return "waits for a person's approval"
        case (.sleep, let longest?): return "sleeps \(DurationText.format(longest))"
        case (.sleep, nil): return "sleeps until a time the run gives (not counted in the worst case)"
        case (.callback, let longest): return "then waits for its callback" + (longest.map { " up to \(DurationText.format($0))" } ?? "")
        case (.child, _): return "runs a child saga and waits for it to end (not counted in the worst case); undone by reverting the child"
        }
    }

    static func text(_ plan: SagaPlan, file: String) -> String {
        var lines = ["Plan for \(plan.saga) v\(plan.version) (\(file)); nothing is sent.", "", "Waves (the steps of a wave run at the same time):"]
        for (number, wave) in plan.waves.enumerated() {
            let names = wave.map { name in plan.steps.first { $0.name == name }?.isPivot == true ? "\(name) (pivot)" : name }
            lines.append("  \(number + 1). \(names.joined(separator: ", "))")
        }
        lines.append("")
        lines.append("Steps (delays are the waits before attempts 2, 3, …; with full jitter anywhere from 0):")
        let width = plan.steps.map(\.name.count).max() ?? 10
        for step in plan.steps {
            let after = step.dependsOn.isEmpty ? "starts at once" : "after \(step.dependsOn.joined(separator: ", "))"
            let does = [step.request.map(schedule), step.wait.map(wait)].compactMap { $0 }.joined(separator: ", ")
            lines.append("  \(step.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(does); \(after)")
            let pad = String(repeating: " ", count: width)
            if let forEach = step.forEach {
                lines.append("  \(pad)  once per item of \(forEach) (at most \(SagaDefinition.maximumItems)), up to \(step.maxConcurrency ?? 1) at a time, each item with its own key (\(step.name)[i]); one failing for good turns the run back and each item done is undone on its own")
            }
            if let when = step.when { lines.append("  \(pad)  runs only when \(when); otherwise skipped (never undone), and the steps after it go on") }
            if let failWhen = step.failWhen { lines.append("  \(pad)  a 2xx answer is a refusal when \(failWhen)") }
            if let retryWhen = step.retryWhen { lines.append("  \(pad)  a 2xx answer is retried when \(retryWhen) (still so after the last attempt: outcome unknown)") }
            if let compensation = step.compensation {
                lines.append("  \(pad)  undo: \(schedule(compensation))")
            }
        }
        lines.append("")
        lines.append("Worst case going forward: \(DurationText.format(plan.worstCase)) along \(plan.criticalPath.joined(separator: " → "))"
            + (plan.deadline.map { " (the saga deadline is \(DurationText.format($0)))" } ?? ""))
        for failure in plan.failures {
            lines.append("")
            lines.append("If \(failure.step) fails for good:")
            if let step = plan.steps.first(where: { $0.name == failure.step }), step.forEach != nil {
                lines.append("  (one of its items: the others stop being sent, and those done are undone first, each on its own)")
            }
            if !failure.finishing.isEmpty {
                let fate = failure.stuckStep == nil ? "allowed to finish and then undone" : "allowed to finish, and kept (past the pivot nothing is undone)"
                lines.append("  in flight beside it, \(fate): \(failure.finishing.joined(separator: ", "))")
            }
            if let stuck = failure.stuckStep {
                lines.append("  it runs after the pivot: nothing is undone; the run is stuck at \(stuck) until a person fixes it and retries")
                continue
            }
            if failure.compensationWaves.isEmpty {
                lines.append("  nothing to undo")
            } else {
                for (number, wave) in failure.compensationWaves.enumerated() {
                    lines.append("  \(number + 1). undo \(wave.joined(separator: ", "))\(wave.count > 1 ? " (at the same time)" : "")")
                }
            }
            if !failure.skipped.isEmpty { lines.append("  passed over (no compensation): \(failure.skipped.joined(separator: ", "))") }
            lines.append("  outcome: \(failure.outcome.rawValue)")
            let unknown = failure.ifOutcomeUnknown
            if unknown.compensationWaves == failure.compensationWaves && unknown.outcome == failure.outcome {
                lines.append("  the same if its outcome is unknown (no answer before the timeout): it declares no compensation, or compensateUnknown is false")
            } else if let stuck = unknown.stuckStep {
                lines.append("  if its outcome is unknown (no answer before the timeout): the run is stuck at \(stuck), since the pivot may have been applied, until a person finds out and retries or cancels")
            } else {
                let undo = unknown.compensationWaves.map { $0.joined(separator: " + ") }.joined(separator: ", then ")
                lines.append("  if its outcome is unknown (no answer before the timeout), it may have been applied, so it is undone too: \(undo); outcome: \(unknown.outcome.rawValue)")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The run under a `--when` script, wave by wave.
    static func text(_ scripted: ScriptedPlan, saga: SagaDefinition) -> String {
        let script = scripted.script.map { "\($0.step)=\($0.decision.rawValue)" }.joined(separator: ", ")
        var lines = ["With \(script) (every other step runs and its answers are accepted):"]
        for (number, wave) in scripted.waves.enumerated() {
            let shown = wave.map { name -> String in
                guard name == scripted.turnedBackAt, let step = saga.steps.first(where: { $0.name == name }) else { return name }
                return scripted.script.last { $0.step == name }?.decision == .pending
                    ? "\(name) (still pending after its last attempt by retryWhen: \(step.retryWhen?.summary ?? ""); its outcome is unknown)"
                    : "\(name) (refused by failWhen: \(step.failWhen?.summary ?? ""); nothing applied)"
            }
            lines.append("  \(number + 1). \(shown.joined(separator: ", "))")
        }
        if !scripted.skipped.isEmpty { lines.append("  skipped by their when (never sent, never undone): \(scripted.skipped.joined(separator: ", "))") }
        if let at = scripted.turnedBackAt {
            lines.append("  the run turns back at \(at)" + (scripted.notRun.isEmpty ? "" : "; never sent: \(scripted.notRun.joined(separator: ", "))"))
            for (number, wave) in scripted.compensationWaves.enumerated() {
                lines.append("  undo \(number + 1). \(wave.joined(separator: ", "))\(wave.count > 1 ? " (at the same time)" : "")")
            }
            if scripted.compensationWaves.isEmpty { lines.append("  nothing to undo") }
        }
        lines.append("  outcome: \(scripted.outcome.rawValue)" + (scripted.stuckStep.map { " at \($0), until a person acts" } ?? ""))
        return lines.joined(separator: "\n")
    }

    static func json(_ scripted: ScriptedPlan) -> JSONValue {
        func names(_ list: [String]) -> JSONValue { .array(list.map(JSONValue.string)) }
        return [
            "when": .object(Dictionary(scripted.script.map { ($0.step, JSONValue.string($0.decision.rawValue)) }, uniquingKeysWith: { _, last in last })),
            "waves": .array(scripted.waves.map(names)), "skipped": names(scripted.skipped),
            "turnedBackAt": scripted.turnedBackAt.map(JSONValue.string) ?? .null, "notRun": names(scripted.notRun),
            "compensationWaves": .array(scripted.compensationWaves.map(names)), "outcome": .string(scripted.outcome.rawValue),
            "stuckStep": scripted.stuckStep.map(JSONValue.string) ?? .null,
        ]
    }

    static func schedule(_ call: SagaPlan.CallSchedule) -> String {
        let delays = call.delays.map { range in
            range.lowerBound == range.upperBound
                ? DurationText.format(range.upperBound)
                : "\(range.lowerBound == .zero ? "0" : DurationText.format(range.lowerBound))–\(DurationText.format(range.upperBound))"
        }
        return "timeout \(DurationText.format(call.timeout)), \(call.maxAttempts) attempt\(call.maxAttempts == 1 ? "" : "s")"
            + (delays.isEmpty ? "" : ", delays \(delays.joined(separator: ", "))")
            + (call.maxElapsed.map { ", no retry after \(DurationText.format($0))" } ?? "")
            + ", worst case \(DurationText.format(call.worstCase))"
    }

    static func json(_ plan: SagaPlan) -> JSONValue {
        func ms(_ duration: Duration) -> JSONValue { .int(Int64(duration.milliseconds.rounded())) }
        func call(_ call: SagaPlan.CallSchedule) -> JSONValue {
            [
                "timeoutMs": ms(call.timeout), "maxAttempts": .int(Int64(call.maxAttempts)),
                "delaysMs": .array(call.delays.map { ["min": ms($0.lowerBound), "max": ms($0.upperBound)] }),
                "maxElapsedMs": call.maxElapsed.map(ms) ?? .null, "worstCaseMs": ms(call.worstCase),
            ]
        }
        return [
            "saga": .string(plan.saga), "version": .int(Int64(plan.version)),
            "waves": .array(plan.waves.map { .array($0.map(JSONValue.string)) }),
            "steps": .array(plan.steps.map { step in
                [
                    "name": .string(step.name), "dependsOn": .array(step.dependsOn.map(JSONValue.string)), "pivot": .bool(step.isPivot),
                    "request": step.request.map(call) ?? .null, "compensation": step.compensation.map(call) ?? .null,
                    "wait": step.wait.map { wait in ["kind": .string(wait.kind.rawValue), "longestMs": wait.longest.map(ms) ?? .null] } ?? .null,
                    "when": step.when.map(JSONValue.string) ?? .null, "failWhen": step.failWhen.map(JSONValue.string) ?? .null,
                    "retryWhen": step.retryWhen.map(JSONValue.string) ?? .null,
                    "forEach": step.forEach.map(JSONValue.string) ?? .null,
                    "maxConcurrency": step.maxConcurrency.map { .int(Int64($0)) } ?? .null,
                ]
            }),
            "worstCaseMs": ms(plan.worstCase), "criticalPath": .array(plan.criticalPath.map(JSONValue.string)),
            "deadlineMs": plan.deadline.map(ms) ?? .null,
            "failures": .array(plan.failures.map { failure in
                [
                    "step": .string(failure.step), "finishing": .array(failure.finishing.map(JSONValue.string)),
                    "compensationWaves": .array(failure.compensationWaves.map { .array($0.map(JSONValue.string)) }),
                    "skipped": .array(failure.skipped.map(JSONValue.string)), "outcome": .string(failure.outcome.rawValue),
                    "stuckStep": failure.stuckStep.map(JSONValue.string) ?? .null,
                    "ifOutcomeUnknown": [
                        "compensationWaves": .array(failure.ifOutcomeUnknown.compensationWaves.map { .array($0.map(JSONValue.string)) }),
                        "outcome": .string(failure.ifOutcomeUnknown.outcome.rawValue),
                        "stuckStep": failure.ifOutcomeUnknown.stuckStep.map(JSONValue.string) ?? .null,
                    ],
                ]
            }),
        ]
    }

    /// Forward steps as boxes (the pivot as a hexagon) with solid edges; compensations as rounded boxes,
    /// linked to their step by a dotted edge, and to each other in the order they run.
    static func mermaid(_ saga: SagaDefinition) -> String {
        var lines = ["flowchart TD"]
        func node(_ index: Int) -> String { "s\(index)" }
        func undo(_ index: Int) -> String { "u\(index)" }
        // Mermaid labels are quoted: a quote inside one is written as #quot;.
        func label(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "#quot;") + "\"" }
        for (index, step) in saga.steps.enumerated() {
            var text = step.isPivot ? "\(step.name) (pivot)" : step.name
            if let forEach = step.forEach?.wholeReference { text += " ×each \(forEach)" }
            if let when = step.when { text += " (when \(when.summary))" }
            if let child = step.action.child { text += " → saga \(child.name)\(child.version.map { " v\($0)" } ?? "")" }
            // The pivot is a hexagon, a fan-out a double-edged box (one call per item), any other step a box.
            lines.append(
                step.isPivot ? "  \(node(index)){{\(label(text))}}" : step.forEach != nil ? "  \(node(index))[[\(label(text))]]" : "  \(node(index))[\(label(text))]")
        }
        for (index, dependencies) in saga.dependencies.enumerated() {
            for dependency in dependencies { lines.append("  \(node(dependency)) --> \(node(index))") }
        }
        for (index, step) in saga.steps.enumerated() where step.isUndoable {
            lines.append("  \(undo(index))([\"\(step.compensation == nil ? "revert" : "undo") \(step.name)\"])")
            lines.append("  \(node(index)) -. compensated by .-> \(undo(index))")
        }
        // A compensation runs after those of the steps that depended on it: edges point the way undoing goes.
        for (index, dependencies) in saga.dependencies.enumerated() where saga.steps[index].isUndoable {
            for dependency in dependencies where saga.steps[dependency].isUndoable {
                lines.append("  \(undo(index)) -.-> \(undo(dependency))")
            }
        }
        return lines.joined(separator: "\n")
    }
}

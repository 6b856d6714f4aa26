import ArgumentParser
import Foundation
import SkaldAPI
import SkaldCore

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a run: stop going forward and compensate the completed steps.")

    @Argument(help: "The run id.")
    var run: String

    @Option(name: .long, help: "Why, for the run's history.")
    var reason: String?

    @OptionGroup var who: OperatorOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let id = run
        let body = CancelRunRequest(reason: reason, by: who.name)
        try await SkaldClient.with(client) { api in
            let answer = try await api.post(RunView.self, "/v1/runs/\(urlComponent(id))/cancel", body)
            if OperatorReply.said(answer, id, json: client.json) { return }
            print("cancelled run \(id): now \(answer.value.status); follow it with `skald watch \(id)`")
        }
    }
}

/// Who an operator is, for the run's history.
struct OperatorOptions: ParsableArguments {
    @Option(name: .long, help: "Who is acting, for the run's history (default: $USER, else the login name).")
    var by: String?

    /// `--by`, else `$USER`, else the account's login name, else "unknown": the history never says nobody.
    var name: String {
        if let by, !by.isEmpty { return by }
        if let user = ProcessInfo.processInfo.environment["USER"], !user.isEmpty { return user }
        if let entry = getpwuid(getuid()), let login = entry.pointee.pw_name.map({ String(cString: $0) }), !login.isEmpty {
            return login
        }
        return "unknown"
    }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Try again: the failed compensation of a compensation_failed run, or the failed step of a stuck run.",
        discussion: "The retried call gets its retry policy afresh. The history records who and why.")

    @Argument(help: "The run id.")
    var run: String

    @Option(name: .long, help: "Only this step's compensation (default: every failed one).")
    var step: String?

    @Option(name: .long, help: "Why, for the run's history.")
    var note: String?

    @OptionGroup var who: OperatorOptions
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let id = run
        let body = RetryRunRequest(step: step, by: who.name, note: note)
        try await SkaldClient.with(client) { api in
            let answer = try await api.post(RunView.self, "/v1/runs/\(urlComponent(id))/retry", body)
            if OperatorReply.said(answer, id, json: client.json) { return }
            print("retrying run \(id): now \(answer.value.status); follow it with `skald watch \(id)`")
        }
    }
}

struct ResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Record that a step was done by hand: a failed compensation, or a stuck run's failed step.",
        discussion: """
            On a run in compensation_failed, the step's compensation was undone by hand: it shows as \
            compensation_resolved and the steps before it are undone. On a stuck run, the step that failed after the \
            pivot (or the pivot whose outcome is unknown) was done by hand: it shows as resolved and the run goes on \
            with the steps after it. When those read its response, give it with --response, as the participant would \
            have answered. The history records who and what.
            """)

    @Argument(help: "The run id.")
    var run: String

    @Option(name: .long, help: "The step that was done (or undone) by hand.")
    var step: String

    @Option(name: .long, help: "What was done, for the run's history (for example \"issued the card in the back office\").")
    var note: String

    @Option(
        name: .long,
        help: ArgumentHelp(
            "For a stuck run's step: the response body later steps read, as JSON or @FILE (its status reads as 200).",
            valueName: "JSON"))
    var response: String?

    @OptionGroup var who: OperatorOptions
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if note.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--note must say what was done by hand; it is kept in the run's history")
        }
    }

    func run() async throws {
        let id = run
        let body = ResolveRunRequest(
            step: step, note: note, by: who.name, response: try response.map { try InputArgument.loadOrExit($0, option: "--response") })
        let step = step
        try await SkaldClient.with(client) { api in
            let answer = try await api.post(RunView.self, "/v1/runs/\(urlComponent(id))/resolve", body)
            if OperatorReply.said(answer, id, json: client.json) { return }
            let run = answer.value
            let what = run.step(step)?.stepStatus == .resolved ? "\(step), done by hand; the run goes on from it" : "the compensation of \(step)"
            print("resolved \(what) in run \(id): now \(run.status); follow it with `skald watch \(id)`")
        }
    }
}

extension AbandonCommand {
    /// The steps with a compensation that may still be applied (succeeded, outcome unknown, or whose undo failed), as
    /// `SagaMachine.notUndone` says, from the run's JSON: a step without a compensation is never undone, so it is not
    /// "left".
    static func notUndone(_ run: RunView) -> [String] {
        let compensated = Set((run.graph?.steps ?? []).filter(\.compensation).map(\.name))
        let applied: Set<StepStatus> = [.succeeded, .resolved, .outcomeUnknown, .compensationFailed, .compensating]
        return run.steps.filter { step in compensated.contains(step.name) && step.stepStatus.map(applied.contains) == true }.map(\.name)
    }
}

struct AbandonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abandon",
        abstract: "Stop a run without undoing anything more, because the business settled it by hand.",
        discussion: """
            Unlike cancel, which compensates, abandon sends nothing new: an attempt in flight finishes and is \
            recorded, and the run ends in abandoned with your note in its history. For a running, compensating, \
            stuck or compensation_failed run.
            """)

    @Argument(help: "The run id.")
    var run: String

    @Option(name: .long, help: "How the business settled it, for the run's history (for example \"refunded by phone, ticket 4411\").")
    var note: String

    @OptionGroup var who: OperatorOptions
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if note.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--note must say how the run was settled; it is kept in the run's history")
        }
    }

    func run() async throws {
        let id = run
        let body = AbandonRunRequest(note: note, by: who.name)
        try await SkaldClient.with(client) { api in
            let answer = try await api.post(RunView.self, "/v1/runs/\(urlComponent(id))/abandon", body)
            if OperatorReply.said(answer, id, json: client.json) { return }
            let left = Self.notUndone(answer.value)
            print("abandoned run \(id): nothing more is sent or undone" + (left.isEmpty ? "" : "; still applied, not undone: \(left.joined(separator: ", "))"))
        }
    }
}

struct RevertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revert",
        abstract: "Undo a completed run: its compensations run, in reverse, and it ends compensated.",
        discussion: """
            For a completed run of a saga without a pivot (past its point of no return a saga cannot turn back). \
            Every step it did is undone as if it had failed after its last step; a step that ran a child saga \
            reverts that child too. Follow it with skald watch.
            """)

    @Argument(help: "The run id.")
    var run: String

    @Option(name: .long, help: "Why it is undone, for the run's history.")
    var note: String

    @OptionGroup var who: OperatorOptions
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if note.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--note must say why the run is undone; it is kept in its history") }
    }

    func run() async throws {
        let id = run
        try await SkaldClient.with(client) { api in
            let answer = try await api.post(RunView.self, "/v1/runs/\(urlComponent(id))/revert", RevertRunRequest(note: note, by: who.name))
            if OperatorReply.said(answer, id, json: client.json) { return }
            print("reverting run \(id): its steps are undone in reverse (\(answer.value.status) now); follow it with skald watch \(id)")
        }
    }
}

/// What every operator verb prints before its own line.
enum OperatorReply {
    /// With `--json`, the answer as it came; on 202 (the node that drives the run took the action and is carrying it
    /// out), that and what to follow. True when that was all there is to say.
    static func said(_ answer: Answer<RunView>, _ id: String, json: Bool) -> Bool {
        if json {
            print(answer.json.prettyText)
            return true
        }
        guard answer.status == 202 else { return false }
        print("accepted: \(answer.value.accepted ?? "the node that drives the run is carrying the action out"); follow it with `skald watch \(id)`")
        return true
    }
}

/// `skald approve` and `skald reject`: a person's decision on a step waiting for approval.
struct DecisionOptions: ParsableArguments {
    @Argument(help: "The run id.")
    var run: String

    @Argument(help: "The step waiting for approval (skald status RUN shows it, and skald list --waiting the runs).")
    var step: String

    @Option(name: .long, help: "Why, for the run's history.")
    var note: String?

    @OptionGroup var who: OperatorOptions
    @OptionGroup var client: ClientOptions

    func decide(_ verb: String) async throws {
        let (id, step) = (run, step)
        let body = DecideStepRequest(note: note, by: who.name)
        try await SkaldClient.with(client) { api in
            let answer = try await api.post(RunView.self, "/v1/runs/\(urlComponent(id))/steps/\(urlComponent(step))/\(verb)", body)
            if OperatorReply.said(answer, id, json: client.json) { return }
            let run = answer.value
            let outcome = verb == "approve"
                ? "\(step) succeeded; the run goes on"
                : "\(step) failed\(run.status == RunStatus.compensating.rawValue ? "; the steps before it are being undone" : "")"
            print("\(verb == "approve" ? "approved" : "rejected") \(step) of run \(id): \(outcome) (now \(run.status)); follow it with `skald watch \(id)`")
        }
    }
}

struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve a step waiting for a person: it succeeds and the run goes on.",
        discussion: "The history records who approved and the note. `skald list --waiting` lists the runs waiting for a decision.")

    @OptionGroup var decision: DecisionOptions

    func run() async throws { try await decision.decide("approve") }
}

struct RejectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reject", abstract: "Reject a step waiting for a person: it fails and the run undoes the steps before it.",
        discussion: "The history records who rejected it and the note. An approval nobody decides before its timeout is rejected too.")

    @OptionGroup var decision: DecisionOptions

    func run() async throws { try await decision.decide("reject") }
}

import ArgumentParser
import Foundation
import SkaldAPI
import SkaldCore

struct DefineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "define", abstract: "Register a saga definition file with the server.")

    @Argument(help: "The saga definition file (JSON).")
    var file: String

    @OptionGroup var client: ClientOptions

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            printError("error: cannot read \(file); check the path")
            throw Exit.invalid
        }
        let file = file
        try await SkaldClient.with(client) { api in
            do {
                let (status, body) = try await api.send(.POST, "/v1/definitions", body: Array(data))
                if client.json { print(body.prettyText); return }
                let registered = try SkaldClient.read(DefinitionView.self, body, "POST /v1/definitions")
                let (name, version, hash) = (registered.name, registered.version, registered.hash.prefix(12))
                print(status == 201 ? "registered \(name) v\(version) (\(hash)…)" : "\(name) v\(version) is already registered with this content (\(hash)…)")
                for warning in registered.warnings ?? [] {
                    printError("\(file): warning: \(warning.path.map { "\($0): " } ?? "")\(warning.message)")
                }
            } catch let failure as APIFailure where failure.status == 422 && !client.json {
                // The same lines as `skald validate`: FILE:LINE:COL: PATH: message.
                func listed(_ key: String) -> [ProblemView] {
                    (failure.details?[key]).flatMap { try? JSONValueCoding.decode([ProblemView].self, from: $0) } ?? []
                }
                let problems = listed("problems").map { problem in
                    DefinitionProblem(
                        path: nil,
                        location: problem.line.flatMap { line in problem.column.map { SourceLocation(line: line, column: $0) } },
                        message: [problem.path, problem.message].compactMap { $0 }.joined(separator: ": "))
                }
                if problems.isEmpty { printError("\(file): \(failure.message)") }
                for line in DefinitionError(file: file, problems: problems).lines { printError(line) }
                for warning in listed("warnings") {
                    let at = [warning.line, warning.column].compactMap { $0 }.map(String.init).joined(separator: ":")
                    printError("\(file)\(at.isEmpty ? "" : ":" + at): warning: \(warning.path.map { "\($0): " } ?? "")\(warning.message)")
                }
                throw Exit.invalid
            } catch let failure as APIFailure where failure.status == 400 && !client.json {
                printError("\(file): \(failure.message)")
                throw Exit.invalid
            }
        }
    }
}

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start a run of a registered saga.",
        discussion: "With --watch, follow it to the end and exit with its outcome (0 completed, 3 compensated, 4 compensation_failed, 5 stuck, 6 abandoned).")

    @Argument(help: "The saga's name.")
    var saga: String

    @Option(name: .long, help: "The run's input: inline JSON, or @FILE.")
    var input: String?

    @Option(name: .customLong("saga-version"), help: "A version of the saga (default: the latest registered).")
    var version: Int?

    @Option(name: .long, help: "Starting again with the same key returns the first run instead of a second one.")
    var idempotencyKey: String?

    @Flag(name: .long, help: "Follow the run until it finishes.")
    var watch = false

    @Option(
        name: .long,
        help: "A W3C traceparent the run continues (default: $TRACEPARENT); every call to a participant carries the trace.")
    var traceparent: String?

    @Option(name: .long, help: "A W3C tracestate passed on to the participants with the traceparent (default: $TRACESTATE).")
    var tracestate: String?

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let inputValue = try InputArgument.loadOrExit(input)
        let environment = ProcessInfo.processInfo.environment
        var headers: [(String, String)] = []
        if let parent = traceparent ?? environment["TRACEPARENT"], !parent.isEmpty {
            headers.append(("traceparent", parent))
            if let state = tracestate ?? environment["TRACESTATE"], !state.isEmpty { headers.append(("tracestate", state)) }
        }
        let body = StartRunRequest(saga: saga, version: version, input: inputValue, idempotencyKey: idempotencyKey)
        let (watch, idempotencyKey) = (watch, idempotencyKey)
        try await SkaldClient.with(client) { api in
            let answer = try await api.post(RunView.self, "/v1/runs", body, headers: headers)
            let run = answer.value
            let id = run.id
            if client.json && !watch {
                print(answer.json.prettyText)
                return
            }
            if answer.status == 201 {
                print("started run \(id) of \(run.saga) v\(run.version)")
            } else {
                print("run \(id) already exists for idempotency key \(idempotencyKey ?? ""); not starting another (\(run.status))")
            }
            if watch { try await Watcher(api: api, json: client.json).follow(id) }
        }
    }
}

struct DefinitionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "definitions", abstract: "List the registered sagas and their versions.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await SkaldClient.with(client) { api in
            let answer = try await api.get(DefinitionsPage.self, "/v1/definitions")
            if client.json { print(answer.json.prettyText); return }
            let definitions = answer.value.definitions
            if definitions.isEmpty {
                print("no sagas are registered; register one with `skald define FILE` (or start skald serve with --sagas DIR)")
                return
            }
            let rows = definitions.map { definition -> [String] in
                [
                    definition.name, "v\(definition.version)", RelativeTime.describe(definition.registeredAt),
                    definition.steps.joined(separator: " → "),
                ]
            }
            print(Table.render(["SAGA", "VERSION", "REGISTERED", "STEPS"], rows, style: .forStandardOutput))
        }
    }
}

struct DefinitionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "definition", abstract: "Print a registered saga's definition (credential headers shown as ***).")

    @Argument(help: "The saga's name.")
    var name: String

    @Option(name: .customLong("saga-version"), help: "A version of the saga (default: the latest registered).")
    var version: Int?

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let path = "/v1/definitions/\(urlComponent(name))" + (version.map { "?version=\($0)" } ?? "")
        try await SkaldClient.with(client) { api in
            let answer = try await api.get(DefinitionView.self, path)
            print(client.json ? answer.json.prettyText : (answer.value.definition ?? .null).prettyText)
        }
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List runs, newest first.")

    @Option(name: .long, help: "Only runs in this status: running, compensating, completed, compensated, compensation_failed, stuck, abandoned.")
    var status: String?

    @Option(name: .long, help: "Only runs of this saga.")
    var saga: String?

    @Option(name: .long, help: "How many runs.")
    var limit = 20

    @Option(name: .long, help: "Continue after this run id (the cursor printed at the end of a full page).")
    var cursor: String?

    @Option(name: .long, help: "Only runs started within this long ago, for example 2h.")
    var since: String?

    @Option(name: .long, help: "Only runs started longer ago than this, for example 30m.")
    var until: String?

    @Option(name: .long, help: "Only the run started with this idempotency key.")
    var idempotencyKey: String?

    @Flag(name: .long, help: "Only the runs waiting for a person to approve or reject a step, oldest first.")
    var waiting = false

    @OptionGroup var client: ClientOptions

    func validate() throws {
        if let status, RunStatus(rawValue: status) == nil {
            throw ValidationError("--status must be one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (1...500).contains(limit) else { throw ValidationError("--limit must be from 1 to 500") }
        for (option, value) in [("--since", since), ("--until", until)] {
            if let value, DurationText.parse(value) == nil {
                throw ValidationError("\(option) must be a duration such as 2h or 30m (how long ago), not \"\(value)\"")
            }
        }
    }

    func run() async throws {
        var query = ["limit=\(limit)"]
        if let status { query.append("status=\(urlComponent(status))") }
        if let saga { query.append("saga=\(urlComponent(saga))") }
        if let cursor { query.append("cursor=\(urlComponent(cursor))") }
        if let since { query.append("since=\(urlComponent(since))") }
        if let until { query.append("until=\(urlComponent(until))") }
        if let idempotencyKey { query.append("idempotencyKey=\(urlComponent(idempotencyKey))") }
        if waiting { query.append("waiting=approval") }
        let path = "/v1/runs?" + query.joined(separator: "&")
        try await SkaldClient.with(client) { api in
            let answer = try await api.get(RunsPage.self, path)
            if client.json { print(answer.json.prettyText); return }
            let runs = answer.value.runs
            if runs.isEmpty {
                print("no runs\(waiting ? " waiting for a person" : "")\(status.map { " in status \($0)" } ?? "")\(saga.map { " of \($0)" } ?? "")")
                return
            }
            let style = ProgressPrinter.Style.forStandardOutput
            let rows = runs.map { run -> [String] in
                var detail = waiting ? "\(run.currentStep ?? "a step") waits for a person's decision" : ""
                if let failure = run.stuck ?? run.compensationFailure ?? run.failure {
                    detail = (failure.step.map { "\($0): " } ?? "") + failure.reason
                    if detail.count > 60 { detail = String(detail.prefix(59)) + "…" }
                }
                return [
                    run.id, "\(run.saga) v\(run.version)", run.runStatus?.painted(style) ?? run.status,
                    RelativeTime.describe(run.createdAt), RelativeTime.describe(run.updatedAt), detail,
                ]
            }
            print(Table.render(["RUN", "SAGA", "STATUS", "STARTED", "UPDATED", "DETAIL"], rows, style: style))
            if let next = answer.value.nextCursor { print("more: skald list\(waiting ? " --waiting" : "") --cursor \(next)") }
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a run: its state and every step.")

    @Argument(help: "The run id.")
    var run: String

    @Flag(name: .long, help: "List every item of a forEach step (otherwise at most \(Self.itemsShown), those not done first).")
    var items = false

    @OptionGroup var client: ClientOptions

    /// How many items of a forEach step `status` lists without --items.
    static let itemsShown = 10

    func run() async throws {
        let id = run
        let allItems = items
        try await SkaldClient.with(client) { api in
            let answer = try await api.get(RunView.self, "/v1/runs/\(urlComponent(id))")
            if client.json { print(answer.json.prettyText); return }
            let run = answer.value
            let style = ProgressPrinter.Style.forStandardOutput
            let status = run.runStatus
            print("run \(style.bold(id)) of \(run.saga) v\(run.version): \(status?.painted(style) ?? run.status)")
            print("started \(RelativeTime.describe(run.createdAt)), updated \(RelativeTime.describe(run.updatedAt))")
            if let trace = run.traceId { print("trace \(trace)") }
            if let parent = run.parent { print("child of run \(parent.run), step \(parent.step) (skald status \(parent.run))") }
            if let output = run.output { print("output: \(output.jsonText)") }
            if let problem = run.outputError { print(style.yellow("output: cannot be worked out: \(problem)")) }
            if let failure = run.failure {
                print("failure: \(failure.step.map { "\($0): " } ?? "")\(failure.reason)")
            }
            if let unrunnable = run.unrunnable {
                print(style.red("unrunnable: Skald cannot drive this run, so nothing more is sent for it"))
                for problem in unrunnable.problems { print("  \(problem)") }
                print(
                    unrunnable.canBeAbandoned
                        ? "  settle what it did by hand, then `skald abandon \(id) --note TEXT` records that and ends it"
                        : "  its stored definition no longer validates with this version of Skald: run it with the version that started it")
            }
            if status == .abandoned {
                let left = AbandonCommand.notUndone(run)
                print("abandoned by an operator: nothing more is sent or undone (`skald history \(id)` says who and why)")
                if !left.isEmpty { print("  still applied, not undone: \(left.joined(separator: ", ")); settle them by hand if that is not already done") }
            }
            if let failure = run.compensationFailure {
                print(style.red("compensation failed: \(failure.step ?? ""): \(failure.reason)"))
                if status == .compensationFailed {
                    print("  retry it with `skald retry \(id)` once the participant is fixed, or `skald resolve \(id) --step STEP --note TEXT` if you undid it by hand")
                }
            }
            if let stuck = run.stuck, status == .stuck {
                let step = stuck.step ?? ""
                if Watcher.isUndecidedPivot(stuck) {
                    let key = run.step(step)?.idempotencyKey ?? ""
                    print(style.red("stuck at the pivot: the outcome of \(step) is unknown: \(stuck.reason)"))
                    print("  find out at the participant whether the request with Idempotency-Key \(key) was applied; then `skald retry \(id)` sends it again with the same key, `skald resolve \(id) --step \(step) --note TEXT` records that it was applied and goes on, or `skald cancel \(id)` compensates the steps before it")
                } else {
                    print(style.red("stuck after the pivot: \(step): \(stuck.reason)"))
                    print("  fix what that step calls, then `skald retry \(id)` tries it again; or, if you did its work by hand, `skald resolve \(id) --step \(step) --note TEXT` records that and the run goes on")
                }
            }
            func row(_ step: StepView) -> [String] {
                var detail = step.lastError ?? ""
                if detail.isEmpty, let response = step.response {
                    detail = "HTTP \(response.status) \(response.body.jsonText)"
                }
                if step.outcomeUnknown {
                    let undone = [StepStatus.compensating, .compensated].contains(step.stepStatus)
                    detail = (undone ? "outcome unknown, undone in case it was applied: " : "outcome unknown: ") + detail
                }
                if let resolution = step.resolution, step.wait?.kind == WaitKind.approval.rawValue {
                    let verb = step.stepStatus == .succeeded ? "approved" : "rejected"
                    detail = "\(verb) by \(resolution.by.isEmpty ? "an operator" : resolution.by)" + (resolution.note.isEmpty ? "" : ": \(resolution.note)")
                } else if let resolution = step.resolution {
                    detail = "by hand" + (resolution.by.isEmpty ? "" : " (\(resolution.by))") + ": \(resolution.note)"
                }
                if let wait = step.wait, step.stepStatus == .waiting {
                    detail = Self.describe(wait: wait)
                } else if let waiting = step.waiting {
                    detail = Self.describe(waiting: waiting) + (detail.isEmpty ? "" : "; " + detail)
                } else if let next = step.nextAttemptAt {
                    detail = "next attempt \(RelativeTime.describe(next)); " + detail
                }
                if let items = step.items { detail = items.summary + (detail.isEmpty ? "" : "; " + detail) }
                if let child = step.wait?.child { detail = "child run \(child)" + (detail.isEmpty ? "" : "; " + detail) }
                if detail.count > 70 { detail = String(detail.prefix(69)) + "…" }
                let attempts = "\(step.attempts)" + (step.compensationAttempts > 0 ? " + \(step.compensationAttempts) undo" : "")
                return [step.name, step.status, step.items == nil ? attempts : "", detail]
            }
            var rows: [[String]] = []
            var hidden: [(step: String, count: Int)] = []
            for step in run.steps {
                rows.append(row(step))
                guard let items = step.items?.steps else { continue }
                // The items not done first (a failure is what a reader looks for), each under its step.
                let done: Set<String> = [StepStatus.succeeded.rawValue, StepStatus.compensated.rawValue]
                let shown = allItems ? items : Array((items.filter { !done.contains($0.status) } + items.filter { done.contains($0.status) }).prefix(Self.itemsShown))
                let order = Dictionary(uniqueKeysWithValues: items.enumerated().map { ($1.name, $0) })
                rows += shown.sorted { order[$0.name]! < order[$1.name]! }.map { item in
                    var cells = row(item)
                    cells[0] = "  " + cells[0]
                    return cells
                }
                if shown.count < items.count { hidden.append((step.name, items.count - shown.count)) }
            }
            for step in run.steps {
                if let waiting = step.waiting { print(style.yellow("waiting: \(step.name) — \(Self.describe(waiting: waiting))")) }
                guard let wait = step.wait, step.stepStatus == .waiting else { continue }
                print(style.yellow("\(step.name) \(Self.describe(wait: wait))"))
                if wait.kind == WaitKind.approval.rawValue {
                    if let prompt = wait.prompt { print("  asks: \(prompt)") }
                    print("  decide with `skald approve \(id) \(step.name) --note TEXT` or `skald reject \(id) \(step.name) --note TEXT`")
                }
            }
            print("")
            print(Table.render(["STEP", "STATUS", "ATTEMPTS", "DETAIL"], rows, style: style))
            for (step, count) in hidden { print("\(count) more item\(count == 1 ? "" : "s") of \(step) not shown: skald status \(id) --items") }
        }
    }

    /// "waiting for a person's decision since 14:02, times out in 47h58m (a rejection)", or "sleeping since 14:02, until
    /// 14:17 (in 14m58s)".
    static func describe(wait: StepWaitView, now: Date = Date()) -> String {
        let since = wait.since.formatted(date: .omitted, time: .shortened)
        if wait.kind == WaitKind.approval.rawValue {
            return "waiting for a person's decision since \(since), times out \(RelativeTime.describe(wait.until, now: now)) (a timeout is a rejection)"
        }
        if wait.kind == WaitKind.child.rawValue {
            return "waiting since \(since) for its child run \(wait.child ?? "?") to end (skald status \(wait.child ?? "?"))"
        }
        if wait.kind == WaitKind.callback.rawValue {
            return "waiting for its callback since \(since), times out \(RelativeTime.describe(wait.until, now: now)) (then its outcome is unknown)"
        }
        return "sleeping since \(since), until \(wait.until.formatted(date: .abbreviated, time: .shortened)) (\(RelativeTime.describe(wait.until, now: now)))"
    }

    /// "payments circuit open, next probe in 12s", or "queued at payments (bulkhead, rate limit or probes)".
    static func describe(waiting: WaitView, now: Date = Date()) -> String {
        guard waiting.reason == "circuit_open" else {
            return "queued at \(waiting.participant) (its bulkhead, rate limit or half-open probes let it go in turn)"
        }
        return "\(waiting.participant) circuit open" + (waiting.until.map { ", next probe \(RelativeTime.describe($0, now: now))" } ?? "")
    }
}

struct ParticipantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "participants", abstract: "Show each participant's circuit breaker, bulkhead and rate limit, as the server sees them now.",
        discussion: "Kept in memory by each skald serve: after a restart every circuit starts closed, and on a shared database each node shows its own.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await SkaldClient.with(client) { api in
            let answer = try await api.get(ParticipantsPage.self, "/v1/participants")
            if client.json { print(answer.json.prettyText); return }
            let participants = answer.value.participants
            guard !participants.isEmpty else {
                print("no participants: declare them in a saga's \"participants\" or in a file given to skald serve --participants (see docs/participants.md)")
                return
            }
            let style = ProgressPrinter.Style.forStandardOutput
            let now = Date()
            let rows = participants.map { entry -> [String] in
                var circuit = entry.circuit ?? "-"
                if circuit == "open", let probe = entry.nextProbeAt {
                    circuit = style.red("open, probe \(RelativeTime.describe(probe, now: now))")
                } else if circuit == "half_open" {
                    circuit = style.yellow("half-open")
                }
                let rate = entry.failureRate.map { "\(Int($0.rounded()))% of \(entry.callsInWindow)" } ?? "-"
                let load = "\(entry.inFlight)" + (entry.settings.bulkhead.map { "/\($0.maxInFlight)" } ?? "")
                return [
                    entry.name + (entry.saga.map { " (\($0))" } ?? ""), circuit, rate, load, "\(entry.queued)", "\(entry.sent)", "\(entry.heldBack)",
                    entry.summary,
                ]
            }
            print(Table.render(["PARTICIPANT", "CIRCUIT", "FAILURES", "IN FLIGHT", "QUEUED", "SENT", "HELD BACK", "SETTINGS"], rows, style: style))
        }
    }
}

struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch", abstract: "Follow a run live until it finishes.",
        discussion: "Exits with the run's outcome: 0 completed, 3 compensated, 4 compensation_failed, 5 stuck, 6 abandoned.")

    @Argument(help: "The run id.")
    var run: String

    @Flag(name: .long, help: "List every item of a forEach step (otherwise at most \(Self.itemsShown), those not done first).")
    var items = false

    @OptionGroup var client: ClientOptions

    /// How many items of a forEach step `status` lists without --items.
    static let itemsShown = 10

    func run() async throws {
        let id = run
        let allItems = items
        try await SkaldClient.with(client) { api in try await Watcher(api: api, json: client.json).follow(id) }
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Print a run's history, oldest first.")

    @Argument(help: "The run id.")
    var run: String

    @Flag(name: .long, help: "List every item of a forEach step (otherwise at most \(Self.itemsShown), those not done first).")
    var items = false

    @OptionGroup var client: ClientOptions

    /// How many items of a forEach step `status` lists without --items.
    static let itemsShown = 10

    func run() async throws {
        let id = run
        let allItems = items
        try await SkaldClient.with(client) { api in
            let answer = try await api.get(EventsPage.self, "/v1/runs/\(urlComponent(id))/events")
            if client.json { print(answer.json.prettyText); return }
            let style = ProgressPrinter.Style.forStandardOutput
            for event in answer.value.events {
                let at = event.at.formatted(.iso8601.time(includingFractionalSeconds: true))
                print("\(style.dim(at))  \(event.kind.padding(toLength: 24, withPad: " ", startingAt: 0)) \(event.message)")
            }
        }
    }
}

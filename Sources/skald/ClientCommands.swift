import ArgumentParser
import Foundation
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
                let name = body["name"]?.stringValue ?? "?"
                let version = body["version"]?.intValue ?? 0
                let hash = String((body["hash"]?.stringValue ?? "").prefix(12))
                print(status == 201 ? "registered \(name) v\(version) (\(hash)…)" : "\(name) v\(version) is already registered with this content (\(hash)…)")
                for warning in body["warnings"]?.arrayValue ?? [] {
                    let path = warning["path"]?.stringValue.map { "\($0): " } ?? ""
                    printError("\(file): warning: \(path)\(warning["message"]?.stringValue ?? "")")
                }
            } catch let failure as APIFailure where failure.status == 422 && !client.json {
                // The same lines as `skald validate`: FILE:LINE:COL: PATH: message.
                let problems = (failure.details?["problems"]?.arrayValue ?? []).map { problem in
                    DefinitionProblem(
                        path: nil,
                        location: problem["line"]?.intValue.flatMap { line in
                            problem["column"]?.intValue.map { SourceLocation(line: Int(line), column: Int($0)) }
                        },
                        message: [problem["path"]?.stringValue, problem["message"]?.stringValue].compactMap { $0 }.joined(separator: ": "))
                }
                if problems.isEmpty { printError("\(file): \(failure.message)") }
                for line in DefinitionError(file: file, problems: problems).lines { printError(line) }
                for warning in failure.details?["warnings"]?.arrayValue ?? [] {
                    let at = [warning["line"]?.intValue, warning["column"]?.intValue].compactMap { $0 }.map(String.init).joined(separator: ":")
                    let path = warning["path"]?.stringValue.map { "\($0): " } ?? ""
                    printError("\(file)\(at.isEmpty ? "" : ":" + at): warning: \(path)\(warning["message"]?.stringValue ?? "")")
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
        var body: [String: JSONValue] = ["saga": .string(saga), "input": inputValue]
        if let version { body["version"] = .int(Int64(version)) }
        if let idempotencyKey { body["idempotencyKey"] = .string(idempotencyKey) }
        let watch = watch
        try await SkaldClient.with(client) { api in
            let (status, run) = try await api.post("/v1/runs", .object(body), headers: headers)
            let id = run["id"]?.stringValue ?? "?"
            if client.json && !watch {
                print(run.prettyText)
                return
            }
            if status == 201 {
                print("started run \(id) of \(run["saga"]?.stringValue ?? saga) v\(run["version"]?.intValue ?? 0)")
            } else {
                print("run \(id) already exists for idempotency key \(idempotencyKey ?? ""); not starting another (\(run["status"]?.stringValue ?? "?"))")
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
            let page = try await api.get("/v1/definitions")
            if client.json { print(page.prettyText); return }
            let definitions = page["definitions"]?.arrayValue ?? []
            if definitions.isEmpty {
                print("no sagas are registered; register one with `skald define FILE` (or start skald serve with --sagas DIR)")
                return
            }
            let rows = definitions.map { definition -> [String] in
                let steps = (definition["steps"]?.arrayValue ?? []).compactMap(\.stringValue)
                return [
                    definition["name"]?.stringValue ?? "?", "v\(definition["version"]?.intValue ?? 0)",
                    RelativeTime.describe(definition["registeredAt"]), steps.joined(separator: " → "),
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
            let body = try await api.get(path)
            print(client.json ? body.prettyText : (body["definition"] ?? .null).prettyText)
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
        let path = "/v1/runs?" + query.joined(separator: "&")
        try await SkaldClient.with(client) { api in
            let page = try await api.get(path)
            if client.json { print(page.prettyText); return }
            let runs = page["runs"]?.arrayValue ?? []
            if runs.isEmpty {
                print("no runs\(status.map { " in status \($0)" } ?? "")\(saga.map { " of \($0)" } ?? "")")
                return
            }
            let style = ProgressPrinter.Style.forStandardOutput
            let rows = runs.map { run -> [String] in
                let status = run["status"]?.stringValue.flatMap(RunStatus.init(rawValue:))
                let failure = [run["stuck"], run["compensationFailure"], run["failure"]].first { $0 != nil && $0 != .null } ?? nil
                var detail = ""
                if let failure, failure != .null {
                    let step = failure["step"]?.stringValue.map { "\($0): " } ?? ""
                    detail = step + (failure["reason"]?.stringValue ?? "")
                    if detail.count > 60 { detail = String(detail.prefix(59)) + "…" }
                }
                return [
                    run["id"]?.stringValue ?? "", "\(run["saga"]?.stringValue ?? "") v\(run["version"]?.intValue ?? 0)",
                    status?.painted(style) ?? "?", RelativeTime.describe(run["createdAt"]), RelativeTime.describe(run["updatedAt"]), detail,
                ]
            }
            print(Table.render(["RUN", "SAGA", "STATUS", "STARTED", "UPDATED", "DETAIL"], rows, style: style))
            if let next = page["nextCursor"]?.stringValue { print("more: skald list --cursor \(next)") }
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a run: its state and every step.")

    @Argument(help: "The run id.")
    var run: String

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let id = run
        try await SkaldClient.with(client) { api in
            let run = try await api.get("/v1/runs/\(urlComponent(id))")
            if client.json { print(run.prettyText); return }
            let style = ProgressPrinter.Style.forStandardOutput
            let status = run["status"]?.stringValue.flatMap(RunStatus.init(rawValue:))
            print("run \(style.bold(id)) of \(run["saga"]?.stringValue ?? "?") v\(run["version"]?.intValue ?? 0): \(status?.painted(style) ?? "?")")
            print("started \(RelativeTime.describe(run["createdAt"])), updated \(RelativeTime.describe(run["updatedAt"]))")
            if let trace = run["traceId"]?.stringValue { print("trace \(trace)") }
            if let failure = run["failure"], failure != .null {
                print("failure: \(failure["step"]?.stringValue.map { "\($0): " } ?? "")\(failure["reason"]?.stringValue ?? "")")
            }
            if let unrunnable = run["unrunnable"], unrunnable != .null {
                print(style.red("unrunnable: Skald cannot drive this run, so nothing more is sent for it"))
                for problem in unrunnable["problems"]?.arrayValue ?? [] { print("  \(problem.stringValue ?? "")") }
                print(
                    unrunnable["canBeAbandoned"] == true
                        ? "  settle what it did by hand, then `skald abandon \(id) --note TEXT` records that and ends it"
                        : "  its stored definition no longer validates with this version of Skald: run it with the version that started it")
            }
            if status == .abandoned {
                let left = AbandonCommand.notUndone(run)
                print("abandoned by an operator: nothing more is sent or undone (`skald history \(id)` says who and why)")
                if !left.isEmpty { print("  still applied, not undone: \(left.joined(separator: ", ")); settle them by hand if that is not already done") }
            }
            if let failure = run["compensationFailure"], failure != .null {
                print(style.red("compensation failed: \(failure["step"]?.stringValue ?? ""): \(failure["reason"]?.stringValue ?? "")"))
                if status == .compensationFailed {
                    print("  retry it with `skald retry \(id)` once the participant is fixed, or `skald resolve \(id) --step STEP --note TEXT` if you undid it by hand")
                }
            }
            if let stuck = run["stuck"], stuck != .null, status == .stuck {
                let step = stuck["step"]?.stringValue ?? ""
                if Watcher.isUndecidedPivot(stuck) {
                    let key = run["steps"]?.arrayValue?.first { $0["name"]?.stringValue == step }?["idempotencyKey"]?.stringValue ?? ""
                    print(style.red("stuck at the pivot: the outcome of \(step) is unknown: \(stuck["reason"]?.stringValue ?? "")"))
                    print("  find out at the participant whether the request with Idempotency-Key \(key) was applied; then `skald retry \(id)` sends it again with the same key, `skald resolve \(id) --step \(step) --note TEXT` records that it was applied and goes on, or `skald cancel \(id)` compensates the steps before it")
                } else {
                    print(style.red("stuck after the pivot: \(step): \(stuck["reason"]?.stringValue ?? "")"))
                    print("  fix what that step calls, then `skald retry \(id)` tries it again; or, if you did its work by hand, `skald resolve \(id) --step \(step) --note TEXT` records that and the run goes on")
                }
            }
            let rows = (run["steps"]?.arrayValue ?? []).map { step -> [String] in
                var detail = step["lastError"]?.stringValue ?? ""
                if detail.isEmpty, let response = step["response"], response != .null {
                    detail = "HTTP \(response["status"]?.intValue ?? 0) \(response["body"]?.jsonText ?? "")"
                }
                if step["outcomeUnknown"] == true {
                    let undone = ["compensating", "compensated"].contains(step["status"]?.stringValue ?? "")
                    detail = (undone ? "outcome unknown, undone in case it was applied: " : "outcome unknown: ") + detail
                }
                if let resolution = step["resolution"], resolution != .null {
                    let by = resolution["by"]?.stringValue ?? ""
                    detail = "by hand" + (by.isEmpty ? "" : " (\(by))") + ": \(resolution["note"]?.stringValue ?? "")"
                }
                if let waiting = step["waiting"], waiting != .null {
                    detail = Self.describe(waiting: waiting) + (detail.isEmpty ? "" : "; " + detail)
                } else if let next = step["nextAttemptAt"], next != .null {
                    detail = "next attempt \(RelativeTime.describe(next)); " + detail
                }
                if detail.count > 70 { detail = String(detail.prefix(69)) + "…" }
                let attempts = "\(step["attempts"]?.intValue ?? 0)" + ((step["compensationAttempts"]?.intValue ?? 0) > 0 ? " + \(step["compensationAttempts"]?.intValue ?? 0) undo" : "")
                return [step["name"]?.stringValue ?? "", step["status"]?.stringValue ?? "", attempts, detail]
            }
            for step in run["steps"]?.arrayValue ?? [] {
                if let waiting = step["waiting"], waiting != .null {
                    print(style.yellow("waiting: \(step["name"]?.stringValue ?? "") — \(Self.describe(waiting: waiting))"))
                }
            }
            print("")
            print(Table.render(["STEP", "STATUS", "ATTEMPTS", "DETAIL"], rows, style: style))
        }
    }

    /// "payments circuit open, next probe in 12s", or "queued at payments (bulkhead, rate limit or probes)".
    static func describe(waiting: JSONValue, now: Date = Date()) -> String {
        let participant = waiting["participant"]?.stringValue ?? "?"
        guard waiting["reason"]?.stringValue == "circuit_open" else {
            return "queued at \(participant) (its bulkhead, rate limit or half-open probes let it go in turn)"
        }
        let until = waiting["until"].flatMap { $0 == .null ? nil : $0 }
        return "\(participant) circuit open" + (until.map { ", next probe \(RelativeTime.describe($0, now: now))" } ?? "")
    }
}

struct ParticipantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "participants", abstract: "Show each participant's circuit breaker, bulkhead and rate limit, as the server sees them now.",
        discussion: "Kept in memory by each skald serve: after a restart every circuit starts closed, and on a shared database each node shows its own.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await SkaldClient.with(client) { api in
            let answer = try await api.get("/v1/participants")
            if client.json { print(answer.prettyText); return }
            let participants = answer["participants"]?.arrayValue ?? []
            guard !participants.isEmpty else {
                print("no participants: declare them in a saga's \"participants\" or in a file given to skald serve --participants (see docs/participants.md)")
                return
            }
            let style = ProgressPrinter.Style.forStandardOutput
            let now = Date()
            let rows = participants.map { entry -> [String] in
                let name = entry["name"]?.stringValue ?? "?"
                let saga = entry["saga"]?.stringValue.map { " (\($0))" } ?? ""
                var circuit = entry["circuit"]?.stringValue ?? "-"
                if circuit == "open", RelativeTime.parse(entry["nextProbeAt"]) != nil {
                    circuit = style.red("open, probe \(RelativeTime.describe(entry["nextProbeAt"], now: now))")
                } else if circuit == "half_open" {
                    circuit = style.yellow("half-open")
                }
                let rate = entry["failureRate"]?.doubleValue.map { "\(Int($0.rounded()))% of \(entry["callsInWindow"]?.intValue ?? 0)" } ?? "-"
                var load = "\(entry["inFlight"]?.intValue ?? 0)"
                if let limit = entry["settings"]?["bulkhead"]?["maxInFlight"]?.intValue { load += "/\(limit)" }
                return [
                    name + saga, circuit, rate, load, "\(entry["queued"]?.intValue ?? 0)",
                    "\(entry["sent"]?.intValue ?? 0)", "\(entry["heldBack"]?.intValue ?? 0)", entry["summary"]?.stringValue ?? "",
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

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let id = run
        try await SkaldClient.with(client) { api in try await Watcher(api: api, json: client.json).follow(id) }
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Print a run's history, oldest first.")

    @Argument(help: "The run id.")
    var run: String

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let id = run
        try await SkaldClient.with(client) { api in
            let page = try await api.get("/v1/runs/\(urlComponent(id))/events")
            if client.json { print(page.prettyText); return }
            let style = ProgressPrinter.Style.forStandardOutput
            for event in page["events"]?.arrayValue ?? [] {
                let at = RelativeTime.parse(event["at"]).map { $0.formatted(.iso8601.time(includingFractionalSeconds: true)) } ?? ""
                let kind = (event["kind"]?.stringValue ?? "").padding(toLength: 24, withPad: " ", startingAt: 0)
                print("\(style.dim(at))  \(kind) \(event["message"]?.stringValue ?? "")")
            }
        }
    }
}

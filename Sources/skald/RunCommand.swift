import ArgumentParser
import Foundation
import SkaldCore
import SkaldEngine
import SkaldSQLite
import Synchronization

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one saga in this process, durably, and show each attempt as it happens.",
        discussion: """
            The run is stored in the database before anything is sent; if this process dies, `skald resume` \
            continues it. Exit codes: 0 completed, 3 compensated, 4 compensation_failed, 5 stuck, 6 abandoned, 2 invalid \
            definition or input, 1 other errors.
            """)

    @Argument(help: "The saga definition file (JSON).")
    var file: String

    @Option(name: .long, help: "The run's input: inline JSON, or @FILE to read it from a file.")
    var input: String?

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var execution: ExecutionOptions

    func run() async throws {
        let saga = try DefinitionFile.loadOrExit(file)
        // Nobody could decide or call back: this process serves no API, so a run would wait until each times out.
        let approvals = saga.steps.filter { $0.action.kind == .approval }.map(\.name)
        if !approvals.isEmpty {
            printError(
                "\(file): \(approvals.joined(separator: ", ")) wait\(approvals.count == 1 ? "s" : "") for a person's approval, which skald run cannot take (it serves no API); run the saga on a server instead: skald serve --sagas \(file), then skald start \(saga.name) and skald approve RUN STEP")
            throw Exit.invalid
        }
        let callbacks = saga.steps.filter { $0.action.callback != nil }.map(\.name)
        if !callbacks.isEmpty {
            printError(
                "\(file): \(callbacks.joined(separator: ", ")) wait\(callbacks.count == 1 ? "s" : "") for a participant's callback, which skald run cannot take (it serves no API for the callback URL); run the saga on a server instead: skald serve --sagas \(file) --public-url URL, then skald start \(saga.name)")
            throw Exit.invalid
        }
        let inputValue = try InputArgument.loadOrExit(input)
        // Checked before the database is opened, so a refused input leaves nothing behind, not even the file.
        do {
            try SagaMachine(saga: saga).checkStart(input: inputValue, environment: EngineConfiguration().environment)
        } catch {
            printError("\(file): the input does not fit the saga \(saga.name):")
            for problem in error.problems { printError("  - \(problem)") }
            throw Exit.invalid
        }
        let participants = try execution.loadParticipants()
        let opened = try await database.openForEngine()
        let printer = ProgressPrinter(stepNames: saga.steps.map(\.name))
        let started = ContinuousClock.now
        let name = opened.name
        let state: RunState
        var output: Result<JSONValue, TemplateRenderError>?
        do {
            (state, output) = try await EngineHost.with(
                store: opened, maxResponseBytes: execution.maxResponseBytes, participants: participants, dataKey: try execution.loadDataKey(),
                printer: printer) { engine in
            // On PostgreSQL this process is a node for as long as it drives the run, so no other node takes it.
            try await engine.withLease {
            let runID: String
            do {
                runID = try await engine.startRun(saga, input: inputValue)
            } catch let error as InputError {
                printError("\(file): the input does not fit the saga \(saga.name):")
                for problem in error.problems { printError("  - \(problem)") }
                throw Exit.invalid
            }
            print("run \(printer.style.bold(runID)) of \(saga.name) v\(saga.version) (database \(name))")
            let state = try await engine.drive(runID: runID)
            // The output as the API shows it: from the run as stored, its sensitive input masked.
            let stored = try await opened.run(id: runID)
            return (state, stored.flatMap { saga.output(of: state, input: engine.shownInput(of: $0)) })
            }
            }
            await opened.close()
        } catch {
            await opened.close()
            throw error
        }
        print("run \(state.id) \(printer.summary(state, elapsed: ContinuousClock.now - started))")
        switch output {
        case .success(let value)?: print("output: \(value.jsonText)")
        case .failure(let error)?: print(printer.style.yellow("output: cannot be worked out: \(error.message)"))
        case nil: break
        }
        let code = Exit.forStatus(state.status)
        if code != .success { throw code }
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue every unfinished run in the database from its stored state.",
        discussion: """
            An attempt that was recorded as sent but has no recorded outcome is sent again with the same \
            Idempotency-Key. Exits 0 when every run completed (or there was nothing to resume), else the \
            code of the worst outcome: 3 compensated, 4 compensation_failed, 5 stuck, 6 abandoned, 1 a run could not continue.
            """)

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var execution: ExecutionOptions

    func run() async throws {
        let participants = try execution.loadParticipants()
        let opened = try await database.openForEngine()
        let unfinished: [StoredRun]
        let results: [String: RunState]
        let printer: ProgressPrinter
        let failures = Failures()
        do {
            // Every run, those a server parked while they wait (a sleep, an approval) too: this command drives them here.
            _ = try await opened.unparkRuns(dueBy: .distantFuture, limit: .max)
            unfinished = try await opened.unfinishedRuns()
            guard !unfinished.isEmpty else {
                print("nothing to resume: every run in \(opened.name) is finished")
                await opened.close()
                return
            }
            print("resuming \(unfinished.count) unfinished run\(unfinished.count == 1 ? "" : "s") from \(opened.name)")
            if opened.nodeID != nil {
                print("(runs another node holds are taken once its lease lapses, if it does within \(DurationText.format(NodeConfiguration().lease)); a live skald serve keeps its runs)")
            }
            printer = ProgressPrinter(showRunID: unfinished.count > 1)
            results = try await EngineHost.with(
                store: opened, maxResponseBytes: execution.maxResponseBytes, participants: participants, dataKey: try execution.loadDataKey(),
                printer: printer) { engine in
                try await engine.withLease { try await engine.resumeUnfinished(onError: { runID, error in failures.add(runID, error) }) }
            }
            await opened.close()
        } catch {
            await opened.close()
            throw error
        }
        var worst = Exit.completed
        for run in unfinished {
            guard results[run.id] != nil || failures.all.contains(where: { $0.0 == run.id }) else {
                // On PostgreSQL: a live skald serve node drives it.
                print("run \(run.id) is driven by another node; left to it")
                continue
            }
            if let state = results[run.id] {
                // From the run's start, not from this resume: the run is what took that long.
                let elapsed = Duration(secondsValue: Date().timeIntervalSince(run.createdAt))
                print("run \(run.id) \(printer.summary(state, elapsed: elapsed))")
                let code = Exit.forStatus(state.status)
                if code.rawValue > worst.rawValue { worst = code }
            }
        }
        for (runID, error) in failures.all {
            printError("run \(runID) could not continue: \(error)")
            if worst == Exit.completed { worst = Exit.failure }
        }
        if worst != .success { throw worst }
    }
}

/// Errors collected from concurrent runs.
final class Failures: Sendable {
    private let items = Mutex<[(String, String)]>([])
    func add(_ runID: String, _ error: any Error) { items.withLock { $0.append((runID, "\(error)")) } }
    var all: [(String, String)] { items.withLock { $0 } }
}

import ArgumentParser
import Foundation

@main
struct Skald: AsyncParsableCommand {
    /// The release; `--version` adds the commit the binary was built from (`Plugins/BuildInfo`).
    static let version = "0.1.0"

    /// `serve` also takes its settings from the environment and from `--config FILE` (`ServeSettings`): they are added
    /// to its arguments before they are parsed.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "serve", !arguments.contains("--help"), !arguments.contains("-h") {
            do {
                arguments = try ServeSettings.expand(arguments, environment: ProcessInfo.processInfo.environment)
            } catch {
                printError("error: \(error)")
                Self.exit(withError: Exit.invalid)
            }
        }
        await Self.main(arguments)
    }

    static let configuration = CommandConfiguration(
        commandName: "skald",
        abstract: "Durable saga orchestration: HTTP steps with retries and compensation, stored in SQLite or PostgreSQL.",
        discussion: """
            Exit codes of run, resume, watch and start --watch: 0 completed, 3 compensated, 4 compensation_failed, 5 stuck, 6 abandoned, \
            2 invalid definition or input, 1 any other error (for example an unusable database or no server).
            """,
        version: "\(version) (commit \(BuildInfo.commit))",
        subcommands: [
            DemoCommand.self, ValidateCommand.self, RunCommand.self, ResumeCommand.self, ServeCommand.self,
            DefineCommand.self, DefinitionsCommand.self, DefinitionCommand.self, StartCommand.self, ListCommand.self, StatusCommand.self, ParticipantsCommand.self, WatchCommand.self,
            HistoryCommand.self, CancelCommand.self, RetryCommand.self, ResolveCommand.self, AbandonCommand.self, RevertCommand.self, ApproveCommand.self, RejectCommand.self, PlanCommand.self, GraphCommand.self, PruneCommand.self, ExportCommand.self, ImportCommand.self,
            BenchCommand.self, BenchClusterCommand.self, BenchEngineCommand.self, BenchParticipantCommand.self, TortureCommand.self,
        ]
    )
}

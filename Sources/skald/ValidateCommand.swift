import ArgumentParser
import SkaldCore

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check saga definition files and print every problem with its file, line:column and JSON path.",
        discussion: "Exits 0 when every file is valid, 1 otherwise.")

    @Argument(help: "Definition files (JSON).")
    var files: [String]

    func run() throws {
        var invalid = 0
        for file in files {
            switch DefinitionFile.load(file) {
            case .success(let saga):
                print("\(file): ok — \(saga.name) v\(saga.version), \(saga.steps.count) step\(saga.steps.count == 1 ? "" : "s")")
                for warning in saga.warnings { printError("\(file): warning: \(warning)") }
            case .failure(let error):
                invalid += 1
                for line in error.lines + error.warningLines { printError(line) }
                printError(
                    "\(file): \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s")"
                        + (error.warnings.isEmpty ? "" : " and \(error.warnings.count) warning\(error.warnings.count == 1 ? "" : "s")"))
            }
        }
        if invalid > 0 { throw ExitCode(1) }
    }
}

import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SkaldCore
import SkaldSQLite

/// `skald prune --older-than 7d`: deletes finished runs and their history, in batches.
struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete finished runs (completed, compensated or abandoned) and their history once they are older than a duration.",
        discussion: """
            Runs in compensation_failed or stuck wait for an operator and are never pruned, nor are running ones. \
            Deletes in batches, each its own short transaction, so it can run next to a live skald serve. \
            skald serve --prune-older-than does the same every hour.
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(name: .long, help: "Delete runs that finished longer ago than this, for example 7d, 12h or 30m.")
    var olderThan: String

    @Option(name: .long, help: "Runs deleted per transaction.")
    var batchSize = 500

    func validate() throws {
        _ = try RetentionAge.parse(olderThan, option: "--older-than")
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() async throws {
        let age = try RetentionAge.parse(olderThan, option: "--older-than")
        let opened = try await database.open(connections: 2)
        let cutoff = Date().addingTimeInterval(-age.seconds)
        do {
            let deleted = try await opened.prune(finishedBefore: cutoff, batchSize: batchSize)
            print("pruned \(deleted) finished run\(deleted == 1 ? "" : "s") that ended before \(cutoff.formatted(.iso8601)) from \(opened.name)")
            await opened.close()
        } catch {
            await opened.close()
            throw error
        }
    }
}

enum RetentionAge {
    static func parse(_ text: String, option: String) throws -> Duration {
        guard let age = DurationText.parse(text), age > .zero else {
            throw ValidationError("\(option) must be a duration such as 7d, 12h or 30m, not \"\(text)\"")
        }
        return age
    }
}

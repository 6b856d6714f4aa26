import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import Testing
import SkaldTestSupport

/// `skald export` and `skald import` with the real binary: a SQLite database with a finished run, a compensated run
/// and a run killed while its participant held a call moves to PostgreSQL, where the killed run finishes with each
/// action applied once.
@Suite(.timeLimit(.minutes(10))) struct TransferTests {
    @Test(.tags(.postgres), .needs(.postgres)) func aSQLiteDatabaseMovesToPostgresAndItsUnfinishedRunFinishesThere() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let sqlite = try await DatabaseKind.sqlite.newDatabase()
            let saga = try PatientSagas.copy("checkout.json", in: folder)
            let env = participants.environment

            let completed = try await SkaldProcess.run(
                ["run", saga, "--input", checkoutInput(orderId: "o-done"), "--db", sqlite], environment: env, in: folder)
            #expect(completed.status == 0, "\(completed.stderr)")
            let compensated = try await SkaldProcess.run(
                ["run", saga, "--input", checkoutInput(card: Participant.decliningCard, orderId: "o-declined"), "--db", sqlite],
                environment: env, in: folder)
            #expect(compensated.status == 3, "\(compensated.stderr)")
            // Registered, as skald serve --sagas or skald define does.
            let definition = try DefinitionParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: saga))))
            let registration = try await withStore(sqlite) { try await $0.registerDefinition(definition, at: Date()) }
            #expect(registration == .registered)

            // The third run is killed while shipping holds its request: unfinished, with an attempt in flight.
            let shipping = participants[.shipping]
            await shipping.setFaults(Faults(hold: true))
            let killed = try SkaldProcess(["run", saga, "--input", checkoutInput(orderId: "o-killed"), "--db", sqlite], environment: env, in: folder)
            try await waitFor("shipping to hold the request") { await shipping.heldCount == 1 }
            killed.kill()
            _ = await killed.waitForExit()
            await shipping.setFaults(Faults())
            await shipping.releaseHeld()

            let before = try await snapshot(sqlite)
            #expect(before.count == 3)
            let unfinishedID = try #require(before.values.first { !$0.run.state.status.isTerminal }?.run.id)

            let file = folder.appendingPathComponent("skald.export").path
            let exported = try await SkaldProcess.run(["export", "--db", sqlite, "--output", file], in: folder)
            #expect(exported.status == 0, "\(exported.stderr)")
            #expect(exported.stderr.contains("exported 1 definition and 3 runs (1 unfinished) from \(sqlite) to \(file)"), "\(exported.stderr)")

            // A node already serves the PostgreSQL database: it claims the imported unfinished run at once.
            let postgres = try await DatabaseKind.postgres.newDatabase()
            let node = try await ServeProcess(db: postgres, environment: env, in: folder, sagas: try PatientSagas.folder(in: folder))
            defer { node.kill9() }
            let imported = try await SkaldProcess.run(["import", file, "--db", postgres], in: folder)
            #expect(imported.status == 0, "\(imported.stderr)")
            #expect(imported.stdout.contains("imported 0 definitions and 3 runs (1 unfinished)"), "\(imported.stdout)")
            #expect(imported.stdout.contains("the skald serve nodes on this database claim the unfinished runs"), "\(imported.stdout)")

            // The killed run carries on there: shipping is sent again with the same key, and applies it once.
            try await waitFor("the imported run to finish on PostgreSQL") {
                (try? await withStore(postgres) { try await $0.run(id: unfinishedID) })??.state.status == .completed
            }
            let after = try await snapshot(postgres)
            #expect(Set(after.keys) == Set(before.keys))
            for (id, old) in before {
                let new = try #require(after[id])
                #expect(new.run.input == old.run.input)
                #expect(new.run.createdAt == old.run.createdAt)
                #expect(new.run.idempotencyKey == old.run.idempotencyKey)
                #expect(new.run.definitionHash == old.run.definitionHash)
                #expect(Array(new.events.prefix(old.events.count)) == old.events, "\(id)")
                #expect(new.events[old.events.count].kind == .runImported)
                #expect(new.events[old.events.count].message.contains("imported from \(sqlite)"))
                guard id != unfinishedID else { continue }
                #expect(new.run.state == old.run.state, "\(id)")
                #expect(new.run.updatedAt == old.run.updatedAt)
                #expect(new.events.count == old.events.count + 1)
                #expect(new.attempts == old.attempts, "\(id)")
            }
            let resent = try #require(after[unfinishedID]?.attempts.first { $0.key.stepName == "ship-order" })
            #expect(resent.sends == 2 && resent.succeeded == true && resent.node == node.node)
            // The file's definition was registered on the node's start (--sagas) already: the same content, kept.
            let definitions = try await withStore(postgres) { try await $0.definitions() }
            #expect(definitions.contains { $0.name == "checkout" })

            // The same file again changes nothing.
            let again = try await SkaldProcess.run(["import", file, "--db", postgres], in: folder)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("imported 0 definitions and 0 runs (0 unfinished)"), "\(again.stdout)")
            #expect(again.stdout.contains("3 runs the database had already were left as they were"), "\(again.stdout)")

            // While a node serves it, the PostgreSQL database is not exported.
            let refused = try await SkaldProcess.run(["export", "--db", postgres], in: folder)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("1 skald serve node is driving runs on"), "\(refused.stderr)")
            #expect(refused.stdout.isEmpty)

            for kind in Participant.Kind.allCases {
                let perKey = await participants[kind].applicationsPerKey
                #expect(perKey.values.allSatisfy { $0 == 1 }, "\(kind) applied a key twice: \(perKey)")
            }
            #expect(await shipping.ledger.filter { $0.action == "ship" }.count == 2)
        }
    }

    @Test func anExportWithAChangedLineIsRefusedByLineAndPathAndNothingIsImported() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let sqlite = try await DatabaseKind.sqlite.newDatabase()
            let saga = try PatientSagas.copy("checkout.json", in: folder)
            let done = try await SkaldProcess.run(
                ["run", saga, "--input", checkoutInput(orderId: "o-1"), "--db", sqlite], environment: participants.environment, in: folder)
            #expect(done.status == 0, "\(done.stderr)")
            let file = folder.appendingPathComponent("skald.export").path
            #expect(try await SkaldProcess.run(["export", "--db", sqlite, "--output", file], in: folder).status == 0)

            var lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
            // The header, the definition the run ran (never registered: it came from skald run FILE), the run.
            #expect(lines.count == 3)
            #expect(lines[1].contains("\"registered\":false"))
            lines[2] = lines[2].replacingOccurrences(of: "\"status\":\"completed\"", with: "\"status\":\"finished\"")
            try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)

            let target = try await DatabaseKind.sqlite.newDatabase()
            let refused = try await SkaldProcess.run(["import", file, "--db", target], in: folder)
            #expect(refused.status == 2)
            #expect(refused.stderr.contains("\(file): line 3: run.status: \"finished\" is not one of"), "\(refused.stderr)")
            #expect(refused.stderr.contains("Nothing was imported."))
            #expect(try await listRuns(target, RunQuery()).isEmpty)
        }
    }

    @Test func exportRefusesWhileSkaldServeDrivesTheFile() async throws {
        let folder = try temporaryFolder()
        let sqlite = try await DatabaseKind.sqlite.newDatabase()
        let server = try await ServeProcess(db: sqlite, environment: [:], in: folder)
        defer { server.kill9() }
        let refused = try await SkaldProcess.run(["export", "--db", sqlite, "--output", folder.appendingPathComponent("x").path], in: folder)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("another skald process (serve, run or resume) is using the database"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("x").path))
    }

    struct Snapshot: Sendable {
        var run: StoredRun
        var events: [RunEvent]
        var attempts: [AttemptRecord]
    }

    func snapshot(_ db: String) async throws -> [String: Snapshot] {
        try await withStore(db) { store in
            var all: [String: Snapshot] = [:]
            for summary in try await store.listRuns(RunQuery(limit: 100)).runs {
                let run = try #require(try await store.run(id: summary.id))
                all[run.id] = Snapshot(run: run, events: try await store.events(runID: run.id), attempts: try await store.attempts(runID: run.id))
            }
            return all
        }
    }
}

import ArgumentParser
import Foundation
import SkaldCore
import SkaldEngine

/// `skald export --db skald.sqlite --output skald.export`: every definition and run, a JSON line each.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every definition and run of a database (unfinished ones included, with their history and attempts) to a file for skald import.",
        discussion: """
            With skald import it moves Skald from one database to another, SQLite to PostgreSQL or back:
              skald export --db skald.sqlite --output skald.export
              skald import skald.export --db postgres://skald:secret@127.0.0.1:5432/skald
            Stop skald serve first: an export of a database that is being driven would miss what happens after it. \
            On SQLite the export takes the engine lock (it refuses while skald serve runs on the file); on PostgreSQL \
            it refuses while a node's lease is live.
            The file is JSON Lines: a header, then one line per definition and per run. It is written to a temporary \
            file and renamed into place when complete.
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(name: [.short, .long], help: "The file to write (default: standard output).")
    var output: String?

    func run() async throws {
        let opened = try await database.openForEngine(connections: 4)
        do {
            let nodes = try await opened.liveNodes()
            guard nodes.isEmpty else {
                printError(
                    "error: \(nodes.count) skald serve node\(nodes.count == 1 ? " is" : "s are") driving runs on \(opened.name) (\(nodes.joined(separator: ", "))); stop \(nodes.count == 1 ? "it" : "them") first, so the export holds every run as it ends up")
                throw Exit.failure
            }
            let counts: StoreTransfer.Counts
            if let output {
                let partial = output + ".partial"
                guard FileManager.default.createFile(atPath: partial, contents: nil), let handle = FileHandle(forWritingAtPath: partial) else {
                    printError("error: cannot write \(partial); check that its folder exists and is writable")
                    throw Exit.failure
                }
                var writer = BufferedLines(handle)
                do {
                    counts = try await StoreTransfer.export(from: opened, source: opened.name, at: Date()) { try writer.write($0) }
                    try writer.flush()
                    try handle.synchronize()
                    try handle.close()
                    _ = try? FileManager.default.removeItem(atPath: output)
                    try FileManager.default.moveItem(atPath: partial, toPath: output)
                } catch {
                    try? handle.close()
                    try? FileManager.default.removeItem(atPath: partial)
                    throw error
                }
            } else {
                var writer = BufferedLines(FileHandle.standardOutput)
                counts = try await StoreTransfer.export(from: opened, source: opened.name, at: Date()) { try writer.write($0) }
                try writer.flush()
            }
            printError(
                "exported \(plural(counts.definitions, "definition")) and \(plural(counts.runs, "run")) (\(counts.unfinished) unfinished) from \(opened.name)\(output.map { " to \($0)" } ?? "")")
            await opened.close()
        } catch {
            await opened.close()
            if error is ExitCode { throw error }
            printError("error: the export failed: \(error)")
            throw Exit.failure
        }
    }
}

/// `skald import skald.export --db postgres://…`: the definitions and runs of an export, as they were.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Store the definitions and runs of a skald export file in a database, as they were; unfinished runs carry on there.",
        discussion: """
            The whole file is checked first; a problem anywhere is reported with its line and nothing is imported. \
            Each run is then stored in its own transaction, with its history, its attempts and a run_imported event. \
            A run the database has already is left alone, so an interrupted import can simply be run again. \
            A definition whose name and version the database holds with other content stops the import before \
            anything is written.
            Unfinished runs carry on where they were: an attempt that was in flight is sent again with its \
            idempotency key. On PostgreSQL the nodes serving the database claim them at once; on SQLite, start \
            skald serve (or skald resume) on the file (the import refuses while skald serve holds it). Do not drive \
            the old database again afterwards: keep it as a backup.
            """)

    @Argument(help: "The file skald export wrote, or - for standard input.")
    var file: String

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        // Read twice (checked whole, then imported), so standard input is kept in a temporary file first.
        var path = file
        var temporary: String?
        if file == "-" {
            let copy = FileManager.default.temporaryDirectory.appendingPathComponent("skald-import-\(UUID().uuidString)").path
            guard FileManager.default.createFile(atPath: copy, contents: nil), let out = FileHandle(forWritingAtPath: copy) else {
                printError("error: cannot keep standard input in \(copy)")
                throw Exit.failure
            }
            while case let chunk = FileHandle.standardInput.readData(ofLength: 1 << 20), !chunk.isEmpty { out.write(chunk) }
            try? out.close()
            path = copy
            temporary = copy
        }
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        guard FileManager.default.isReadableFile(atPath: path) else {
            printError("error: cannot read \(file); check the path")
            throw Exit.failure
        }
        let name = file == "-" ? "standard input" : file
        let checked: StoreTransfer.Checked
        do {
            checked = try StoreTransfer.check(lines: FileLines(path: path))
        } catch {
            printError("error: \(name): \(error). Nothing was imported.")
            throw Exit.invalid
        }
        let opened = try await database.openForEngine(connections: 10)
        do {
            let counts = try await StoreTransfer.importChecked(checked, lines: FileLines(path: path), into: opened, at: Date())
            var summary =
                "imported \(plural(counts.definitions, "definition")) and \(plural(counts.runs, "run")) (\(counts.unfinished) unfinished) from \(name) into \(opened.name)"
            if counts.alreadyPresent > 0 { summary += "; \(plural(counts.alreadyPresent, "run")) the database had already were left as they were" }
            print(summary)
            if counts.unfinished > 0 {
                if database.isPostgres {
                    print("the skald serve nodes on this database claim the unfinished runs (start one if none runs)")
                } else {
                    print("skald serve --db \(opened.name) (or skald resume) carries on with the unfinished runs")
                }
            }
            await opened.close()
        } catch {
            await opened.close()
            printError("error: the import stopped: \(error). Runs imported before this stay; run the import again to carry on.")
            throw Exit.failure
        }
    }
}

func plural(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

/// Lines written to a file a megabyte at a time.
struct BufferedLines {
    let handle: FileHandle
    var buffer = Data()

    init(_ handle: FileHandle) { self.handle = handle }

    mutating func write(_ line: String) throws {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { try flush() }
    }

    mutating func flush() throws {
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

import Foundation
import SkaldCore
import SkaldEngine
import Testing
import SkaldTestSupport

/// What `skald import` refuses before it writes anything, and what it does when the database refuses a run.
@Suite(.serialized, .tags(.postgres), .timeLimit(.minutes(10))) struct ImportCheckTests {
    static let header = TransferFormat.line(.header(TransferFormat.Header(exportedAt: t0, source: "crafted")))
    static let definitionLine = TransferFormat.line(.definition(
        StoredDefinition(hash: definition.contentHash, name: "pair", version: 1, document: definition.document, createdAt: t0), registered: true))

    /// A run of `definition` as an export line, its state changed by `change`.
    static func runLine(
        _ id: String = "R1", key: String? = nil, input: JSONValue = [:], attempts: [AttemptRecord] = [], events: [RunEvent] = [],
        _ change: (inout RunState) -> Void = { _ in }
    ) -> String {
        var state = machine.start(runID: id, at: t0).state
        change(&state)
        let run = StoredRun(
            id: id, sagaName: "pair", sagaVersion: 1, definitionHash: definition.contentHash, definitionDocument: .null, input: input,
            createdAt: t0, updatedAt: t0, state: state, idempotencyKey: key)
        return TransferFormat.line(.run(ExportedRun(run: run, events: events, attempts: attempts)))
    }

    static func problem(_ lines: [String]) -> String {
        do {
            _ = try StoreTransfer.check(lines: ([header, definitionLine] + lines).map { Array($0.utf8) })
            return "no problem"
        } catch { return "\(error)" }
    }

    @Test func aRunThatBreaksTheEnginesRulesIsRefusedByTheCheck() {
        // The file that crashed every node: a running run whose step succeeded but is still due.
        #expect(
            Self.problem([Self.runLine { $0.steps[0].status = .succeeded; $0.steps[0].response = StepResponse(status: 200, body: [:]) }])
                .hasPrefix("line 3: run.steps[0].dueAt: a: a step in status succeeded has no attempt to make"))
        #expect(Self.problem([Self.runLine { $0.steps[0].attempts = Int.max }]).hasPrefix("line 3: run.steps[0].attempts: a: 9223372036854775807 is not a count"))
        // Running with attempt 1 in flight, but the line has no attempt for it.
        let inFlight = Self.runLine { $0.steps[0].attempts = 1; $0.steps[0].dueAt = nil }
        #expect(Self.problem([inFlight]).hasPrefix("line 3: run.steps[0]: a is running with attempt 1 in flight, but the line has no unfinished attempt 1"))
        let attempt = AttemptRecord(
            key: AttemptKey(runID: "R1", step: 0, stepName: "a", phase: .forward, number: 1), startedAt: t0, sends: 1, finishedAt: nil,
            succeeded: nil, httpStatus: nil, error: nil, durationMs: nil, node: nil)
        #expect(Self.problem([Self.runLine(attempts: [attempt]) { $0.steps[0].attempts = 1; $0.steps[0].dueAt = nil }]) == "no problem")
        #expect(Self.problem([Self.runLine(attempts: [attempt, attempt]) { $0.steps[0].attempts = 1; $0.steps[0].dueAt = nil }])
            .hasPrefix("line 3: attempts[1]: attempt 1 of a (forward) is listed twice"))
        var ninth = attempt
        ninth.key.number = 9
        #expect(Self.problem([Self.runLine(attempts: [ninth]) { $0.steps[0].attempts = 1; $0.steps[0].dueAt = nil }])
            .hasPrefix("line 3: attempts[0].number: attempt 9 of a (forward), which has made 1"))
    }

    @Test func sizesIdsKeysAndTextAreCheckedAsTheAPIChecksThem() {
        #expect(Self.problem([Self.runLine(), Self.runLine()]).hasPrefix("line 4: run.id: run R1 is on line 3 too"))
        #expect(Self.problem([Self.runLine("R1", key: "k"), Self.runLine("R2", key: "k")]).hasPrefix("line 4: run.idempotencyKey: the run on line 3 has the same"))
        #expect(Self.problem([Self.runLine(key: String(repeating: "k", count: 256))]).hasPrefix("line 3: run.idempotencyKey: an idempotency key is 1 to 255"))
        #expect(Self.problem([Self.runLine("a/b")]).hasPrefix("line 3: run.id: a run id is 1 to 255 bytes"))
        let big: JSONValue = ["blob": .string(String(repeating: "x", count: RunLimits.maxInputBytes))]
        let tooBig = Self.problem([Self.runLine(input: big)])
        #expect(tooBig.hasPrefix("line 3: run.input: ") && tooBig.contains("bytes of input, over the 262144"))
        let nul = RunEvent(at: t0, kind: .runStarted, message: "a\u{0}b")
        #expect(Self.problem([Self.runLine(events: [nul])]).hasPrefix("line 3: events[0].message: holds a NUL character"))
        let far = Self.runLine().replacingOccurrences(of: "\"createdAt\":1800000000", with: "\"createdAt\":1e300")
        #expect(Self.problem([far]).hasPrefix("line 3: run.createdAt: 1e+300 is not a time from 1970 to 9999"))
    }

    /// A file the check passes whose third run the database refuses (its key is taken there): nothing is imported,
    /// not even the runs before it, and the message says why.
    @Test(arguments: StoreKind.tested)
    func aRunTheDatabaseRefusesLeavesNothingImported(kind: StoreKind) async throws {
        let lines = [Self.header, Self.definitionLine, Self.runLine("R1", key: "k1"), Self.runLine("R2", key: "k2"), Self.runLine("R3", key: "taken")]
        let bytes = lines.map { Array($0.utf8) }
        let checked = try StoreTransfer.check(lines: bytes)
        try await kind.with(try await kind.newDatabase()) { store in
            _ = try await store.createRun(newRun("OTHER", key: "taken"), transition: machine.start(runID: "OTHER", at: t0))
            let error = await #expect(throws: StoreError.self) { try await StoreTransfer.importChecked(checked, lines: bytes, into: store, at: t0) }
            #expect(error?.message.contains("its idempotency key taken belongs to run OTHER") == true)
            for id in ["R1", "R2", "R3"] {
                #expect(try await store.run(id: id) == nil, "\(id) was imported although the import failed")
                #expect(try await store.events(runID: id).isEmpty)
            }
            #expect(try await store.unfinishedRuns().map(\.id) == ["OTHER"])
        }
    }

    /// The line reader scans each byte once: a line of many megabytes reads as fast as many short lines.
    @Test func aLongLineIsReadWhole() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("skald-lines-\(UUID().uuidString)").path
        let long = String(repeating: "y", count: 5 << 20)
        try ("a\n" + long + "\n\nb").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = Array(FileLines(path: path)).map { String(decoding: $0, as: UTF8.self) }
        #expect(lines.count == 4 && lines[0] == "a" && lines[1] == long && lines[2] == "" && lines[3] == "b")
    }
}

/// Inputs kept from the import fuzzer (`scripts/fuzz SECONDS import`), replayed through the same check: each file is
/// refused with a located problem, or every run it holds keeps the engine's rules.
@Suite(.timeLimit(.minutes(10))) struct ImportFuzzRegressionTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/regressions/import")
    /// The definition Fuzz/FuzzImport.swift puts before the fuzzed lines.
    static let definition = try! DefinitionParser.parse(Array("""
        { "name": "pair", "version": 1, "defaults": { "retry": { "maxAttempts": 3 } }, "steps": [
            { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" },
              "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a" } },
            { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b" } } ] }
        """.utf8))

    static var inputs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test(arguments: inputs)
    func anImportFileTheFuzzerKeptIsHandled(name: String) throws {
        let bytes = Array(try Data(contentsOf: Self.folder.appendingPathComponent(name)))
        let header = TransferFormat.line(.header(TransferFormat.Header(exportedAt: t0, source: "fuzz")))
        let definitionLine = TransferFormat.line(.definition(
            StoredDefinition(hash: Self.definition.contentHash, name: "pair", version: 1, document: Self.definition.document, createdAt: t0),
            registered: true))
        let lines = [Array(header.utf8), Array(definitionLine.utf8)] + bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        do {
            _ = try StoreTransfer.check(lines: lines)
        } catch let error as TransferError {
            #expect(error.line >= 1 && error.line <= lines.count && !error.message.isEmpty)
            return
        }
        let machine = SagaMachine(saga: Self.definition)
        for (index, line) in lines.enumerated() {
            guard case .run(let exported)? = try? TransferFormat.record(line, line: index + 1) else { continue }
            #expect(machine.problems(in: exported.run.state).isEmpty)
        }
    }
}

import Foundation
import SkaldCore

/// A run as another Skald database holds it, for `skald export` and `skald import`: its row and steps, its whole
/// history, and every attempt (one without an outcome was in flight, and is sent again with the same idempotency key
/// when the run is driven from its new store).
public struct ExportedRun: Sendable {
    public var run: StoredRun
    public var events: [RunEvent]
    public var attempts: [AttemptRecord]
    /// Callbacks its participants posted (answered 200) that were not yet applied to it: stored again on import,
    /// so the run applies them there.
    public var callbacks: [StoredCallback]

    public init(run: StoredRun, events: [RunEvent], attempts: [AttemptRecord], callbacks: [StoredCallback] = []) {
        self.run = run
        self.events = events
        self.attempts = attempts
        self.callbacks = callbacks
    }
}

/// What `importRun` did.
public enum ImportedRun: Sendable, Equatable {
    case imported
    /// A run with this id is stored already (an import run twice): nothing was written.
    case alreadyPresent
}

/// What `importRuns` did, counted.
public struct ImportedRuns: Sendable, Equatable {
    public var imported = 0
    /// Of those imported, the runs still running or compensating.
    public var unfinished = 0
    public var alreadyPresent = 0

    public init() {}

    public mutating func add(_ result: ImportedRun, of run: StoredRun) {
        switch result {
        case .imported:
            imported += 1
            if !run.state.status.isTerminal { unfinished += 1 }
        case .alreadyPresent:
            alreadyPresent += 1
        }
    }
}

/// `skald export` and `skald import`: every definition and run of one store, written to or read from the export
/// format, through the `SagaStore` interface, so any store moves to any other (SQLite to PostgreSQL, and back).
public enum StoreTransfer {
    public struct Counts: Sendable, Equatable {
        public var definitions = 0
        public var runs = 0
        /// Runs still running or compensating: the new store's engine carries on with them.
        public var unfinished = 0
        /// Runs the target had already (an import repeated): left as they were.
        public var alreadyPresent = 0
        public init() {}
    }

    /// Writes the header, every registered definition and every run, a line each, through `write`.
    public static func export(
        from store: any SagaStore, source: String, at now: Date, write: (String) throws -> Void
    ) async throws -> Counts {
        var counts = Counts()
        try write(TransferFormat.line(.header(TransferFormat.Header(exportedAt: now, source: source))))
        var written: Set<String> = []
        for definition in try await store.definitions() {
            try write(TransferFormat.line(.definition(definition, registered: true)))
            written.insert(definition.hash)
            counts.definitions += 1
        }
        var cursor: String?
        repeat {
            let page = try await store.listRuns(RunQuery(limit: 500, cursor: cursor))
            for summary in page.runs {
                guard let run = try await store.run(id: summary.id) else { continue }  // pruned meanwhile
                if written.insert(run.definitionHash).inserted {
                    let definition = StoredDefinition(
                        hash: run.definitionHash, name: run.sagaName, version: run.sagaVersion, document: run.definitionDocument,
                        createdAt: run.createdAt)
                    try write(TransferFormat.line(.definition(definition, registered: false)))
                }
                let exported = ExportedRun(
                    run: run, events: try await store.events(runID: run.id), attempts: try await store.attempts(runID: run.id),
                    callbacks: run.state.status.isTerminal ? [] : try await store.callbacks(runID: run.id))
                try write(TransferFormat.line(.run(exported)))
                counts.runs += 1
                if !run.state.status.isTerminal { counts.unfinished += 1 }
            }
            cursor = page.nextCursor
        } while cursor != nil
        return counts
    }

    /// What a checked export file holds: its header, its definitions (by hash), and how many runs.
    public struct Checked: Sendable {
        public struct Definition: Sendable {
            public var definition: SagaDefinition
            public var createdAt: Date
            public var registered: Bool
        }
        public var header: TransferFormat.Header
        /// In file order.
        public var definitions: [Definition]
        public var runs: Int
        public var unfinished: Int

        func document(_ hash: String) -> JSONValue? {
            definitions.first { $0.definition.contentHash == hash }?.definition.document
        }
    }

    /// Reads and checks every line, keeping only the definitions: the header comes first; each definition parses
    /// and matches its hash; each run names a definition from an earlier line, and its steps and attempts match it.
    /// - Throws: `TransferError` naming the line (and JSON path) of the first problem.
    public static func check(lines: some Sequence<[UInt8]>) throws -> Checked {
        var header: TransferFormat.Header?
        var definitions: [Checked.Definition] = []
        var byHash: [String: SagaDefinition] = [:]
        var machines: [String: SagaMachine] = [:]
        var runIDs: [String: Int] = [:]
        var keys: [String: Int] = [:]
        var runs = 0
        var unfinished = 0
        var number = 0
        for bytes in lines {
            number += 1
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            if header == nil, (try? JSONParser.parse(bytes).value)?["format"] == nil { throw missingHeader(number) }
            switch try TransferFormat.record(bytes, line: number) {
            case .header(let found):
                guard header == nil else {
                    throw TransferError(line: number, path: nil, message: "a second header: the file joins two exports; import them one at a time")
                }
                header = found
            case .definition(let stored, let registered):
                let definition = try parse(
                    stored.document, hash: stored.hash, line: number, documentAt: JSONPath().appending("definition").appending("document"),
                    hashAt: JSONPath().appending("definition").appending("hash"))
                if byHash[stored.hash] == nil {
                    byHash[stored.hash] = definition
                    definitions.append(Checked.Definition(definition: definition, createdAt: stored.createdAt, registered: registered))
                }
            case .run(let exported):
                try checkRun(exported, line: number, definitions: byHash, machines: &machines)
                let run = JSONPath().appending("run")
                if let earlier = runIDs.updateValue(number, forKey: exported.run.id) {
                    throw TransferError(line: number, path: run.appending("id"), message: "run \(exported.run.id) is on line \(earlier) too; a file holds each run once")
                }
                if let key = exported.run.idempotencyKey, let earlier = keys.updateValue(number, forKey: key) {
                    throw TransferError(
                        line: number, path: run.appending("idempotencyKey"),
                        message: "the run on line \(earlier) has the same idempotency key; each key belongs to one run")
                }
                runs += 1
                if !exported.run.state.status.isTerminal { unfinished += 1 }
            }
        }
        guard let header else {
            throw TransferError(line: max(number, 1), path: nil, message: "the file is empty; it should start with the line skald export writes first")
        }
        return Checked(header: header, definitions: definitions, runs: runs, unfinished: unfinished)
    }

    static func missingHeader(_ line: Int) -> TransferError {
        TransferError(line: line, path: nil, message: "the file does not start with skald export's header line; is it an export?")
    }

    static func parse(_ document: JSONValue, hash: String, line: Int, documentAt path: JSONPath, hashAt hashPath: JSONPath) throws
        -> SagaDefinition
    {
        let definition: SagaDefinition
        do {
            definition = try DefinitionParser.parse(document)
        } catch {
            throw TransferError(line: line, path: path, message: "not a valid saga definition: \(error)")
        }
        guard definition.contentHash == hash else {
            throw TransferError(line: line, path: hashPath, message: "does not match the definition (the line was changed after export)")
        }
        return definition
    }

    static func checkRun(_ exported: ExportedRun, line: Int, definitions: [String: SagaDefinition], machines: inout [String: SagaMachine]) throws {
        let run = exported.run
        let path = JSONPath().appending("run")
        func problem(_ at: JSONPath, _ message: String) -> TransferError { TransferError(line: line, path: at, message: message) }
        guard let definition = definitions[run.definitionHash] else {
            throw problem(path.appending("definitionHash"), "no definition line before this one has this hash")
        }
        let names = definition.steps.map(\.name)
        // The saga's steps in its order; the items of its forEach steps after them are checked with the engine's rules below.
        guard run.state.steps.prefix(names.count).map(\.name) == names, run.state.steps.count == names.count || run.state.steps[names.count].element != nil
        else {
            throw problem(path.appending("steps"), "the steps \(run.state.steps.map(\.name)) do not match its definition's \(names)")
        }
        guard definition.name == run.sagaName, definition.version == run.sagaVersion else {
            throw problem(path.appending("sagaName"), "does not match its definition (\(definition.name) v\(definition.version))")
        }
        // The sizes the API accepts, and text every store can hold.
        guard !run.id.isEmpty, run.id.utf8.count <= RunLimits.maxRunIDBytes, !run.id.contains("/"), !hasControlCharacters(run.id) else {
            throw problem(path.appending("id"), "a run id is 1 to \(RunLimits.maxRunIDBytes) bytes with no / and no control characters")
        }
        if let key = run.idempotencyKey, key.isEmpty || key.count > RunLimits.maxIdempotencyKeyLength || key.contains("\u{0}") {
            throw problem(path.appending("idempotencyKey"), "an idempotency key is 1 to \(RunLimits.maxIdempotencyKeyLength) characters, without NUL")
        }
        let inputBytes = run.input.jsonText.utf8.count
        // Sealed writeOnly fields take about a third more than the values they hold (base64, nonce and tag).
        let inputLimit = SealedValue.isInside(run.input) ? RunLimits.maxInputBytes * 2 : RunLimits.maxInputBytes
        guard inputBytes <= inputLimit else {
            throw problem(path.appending("input"), "\(inputBytes) bytes of input, over the \(inputLimit) a run may have")
        }
        var texts: [(JSONPath, String?)] = [
            (path.appending("failure").appending("reason"), run.state.failure?.reason),
            (path.appending("compensationFailure").appending("reason"), run.state.compensationFailure?.reason),
            (path.appending("stuck").appending("reason"), run.state.stuck?.reason),
            (path.appending("traceparent"), run.trace?.parent), (path.appending("tracestate"), run.trace?.state),
        ]
        for (index, step) in run.state.steps.enumerated() {
            texts.append((path.appending("steps").appending(index).appending("lastError"), step.lastError))
            texts.append((path.appending("steps").appending(index).appending("resolution").appending("by"), step.resolution?.by))
            texts.append((path.appending("steps").appending(index).appending("resolution").appending("note"), step.resolution?.note))
            texts.append((path.appending("steps").appending(index).appending("wait").appending("prompt"), step.wait?.prompt))
        }
        for (index, event) in exported.events.enumerated() {
            texts.append((JSONPath().appending("events").appending(index).appending("message"), event.message))
            texts.append((JSONPath().appending("events").appending(index).appending("step"), event.step))
        }
        for (index, attempt) in exported.attempts.enumerated() {
            texts.append((JSONPath().appending("attempts").appending(index).appending("error"), attempt.error))
            texts.append((JSONPath().appending("attempts").appending(index).appending("node"), attempt.node))
        }
        for (index, step) in run.state.steps.enumerated() {
            if let token = step.wait?.token, !CallbackToken.isWellFormed(token) {
                throw problem(path.appending("steps").appending(index).appending("wait").appending("token"), "is not a callback token Skald makes")
            }
        }
        for (index, callback) in exported.callbacks.enumerated() {
            let at = JSONPath().appending("callbacks").appending(index)
            guard run.state.steps.indices.contains(callback.step) else {
                throw problem(at.appending("step"), "the run has no step \(callback.step)")
            }
            guard let token = callback.token, CallbackToken.isWellFormed(token) else {
                throw problem(at.appending("token"), "is not a callback token Skald makes")
            }
            if case .failed(let error)? = callback.final { texts.append((at.appending("error"), error)) }
        }
        if let (at, _) = texts.first(where: { $0.1?.contains("\u{0}") == true }) {
            throw problem(at, "holds a NUL character, which a PostgreSQL database cannot store")
        }
        // The rules the engine relies on to drive the run.
        let machine = machines[run.definitionHash] ?? SagaMachine(saga: definition)
        machines[run.definitionHash] = machine
        if let first = machine.problems(in: run.state).first {
            throw problem(JSONPath(path.components + first.path.components), first.message)
        }
        // Every attempt belongs to a step of the definition, once, within that step's count; and a step whose attempt
        // is in flight has that attempt, so that it can be sent again with its key.
        var seen: Set<AttemptKey> = []
        for (index, attempt) in exported.attempts.enumerated() {
            let at = JSONPath().appending("attempts").appending(index)
            guard run.state.steps.indices.contains(attempt.key.step), run.state.steps[attempt.key.step].name == attempt.key.stepName else {
                throw problem(at.appending("step"), "no step \(attempt.key.step) named \(attempt.key.stepName) in the run")
            }
            let made = run.state.steps[attempt.key.step].attempts(in: attempt.key.phase)
            guard attempt.key.number >= 1, attempt.key.number <= made else {
                throw problem(at.appending("number"), "attempt \(attempt.key.number) of \(attempt.key.stepName) (\(attempt.key.phase.rawValue)), which has made \(made)")
            }
            guard attempt.sends >= 1, attempt.sends <= SagaMachine.maximumStoredAttempts else {
                throw problem(at.appending("sends"), "an attempt is sent from 1 to \(SagaMachine.maximumStoredAttempts) times, not \(attempt.sends)")
            }
            guard seen.insert(attempt.key).inserted else {
                throw problem(at, "attempt \(attempt.key.number) of \(attempt.key.stepName) (\(attempt.key.phase.rawValue)) is listed twice")
            }
        }
        if !run.state.status.isTerminal {
            for index in run.state.inFlightSteps {
                let step = run.state.steps[index]
                guard let phase = step.status.phase else { continue }
                let number = step.attempts(in: phase)
                let key = AttemptKey(runID: run.id, step: index, stepName: step.name, phase: phase, number: number)
                guard seen.contains(key), exported.attempts.contains(where: { $0.key == key && $0.finishedAt == nil }) else {
                    throw problem(
                        path.appending("steps").appending(index),
                        "\(step.name) is \(step.status.rawValue) with attempt \(number) in flight, but the line has no unfinished attempt \(number) for it")
                }
            }
        }
    }

    static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// Imports a checked file, reading its lines again: each registered definition registered as it was (the same
    /// name and version with another content is refused before anything is written), then every run, each with a
    /// `run_imported` event, in one transaction: all of them or, when the database refuses any, none (the
    /// definitions, the same content as the file's, stay registered). A run whose id the store has is left alone.
    public static func importChecked(
        _ checked: Checked, lines: some Sequence<[UInt8]>, into store: any SagaStore, at now: Date
    ) async throws -> Counts {
        var counts = Counts()
        for entry in checked.definitions where entry.registered {
            let definition = entry.definition
            if let existing = try await store.definition(name: definition.name, version: definition.version),
                existing.hash != definition.contentHash
            {
                throw StoreError(
                    .definitionConflict, "the database has another definition \(definition.name) version \(definition.version) than the file; nothing was imported. Register the file's under a new version, or import into another database")
            }
        }
        for entry in checked.definitions where entry.registered {
            if case .registered = try await store.registerDefinition(entry.definition, at: entry.createdAt) { counts.definitions += 1 }
        }
        let header = checked.header
        let note = RunEvent(
            at: now, kind: .runImported,
            message: "imported from \(header.source) (exported \(header.exportedAt.formatted(.iso8601))) by skald import",
            data: ["from": .string(header.source), "exportedAt": .double(header.exportedAt.timeIntervalSince1970)])
        // One transaction for every run: a problem the check could not see (a database constraint, a failing disk)
        // leaves the database as it was, so the import can be fixed and run again from the start.
        let reader = RunLineReader(lines: lines, checked: checked)
        let tally = try await store.importRuns(events: [note]) { try reader.next() }
        // The callbacks participants posted and the source had not yet applied, stored again as they came (each one
        // stored now, or a repeat of one an earlier import of this file stored): the run applies them when it is
        // taken up, as it would have there.
        for callback in reader.callbacks {
            guard let token = callback.token else { continue }
            if let at = callback.heartbeatAt { _ = try await store.receiveCallback(token: token, signal: .heartbeat, at: at) }
            if let final = callback.final { _ = try await store.receiveCallback(token: token, signal: final, at: callback.receivedAt ?? now) }
        }
        counts.runs = tally.imported
        counts.unfinished = tally.unfinished
        counts.alreadyPresent = tally.alreadyPresent
        return counts
    }
}

import Foundation
import SkaldCore

/// A run as another Skald database holds it, for `skald export` and `skald import`: its row and steps, its whole
/// history, and every attempt (one without an outcome was in flight, and is sent again with the same idempotency key
/// when the run is driven from its new store).
public struct ExportedRun: Sendable {
    public var run: StoredRun
    public var events: [RunEvent]
    public var attempts: [AttemptRecord]

    public init(run: StoredRun, events: [RunEvent], attempts: [AttemptRecord]) {
        self.run = run
        self.events = events
        self.attempts = attempts
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

/// The export file: JSON Lines, one record per line, so a file of any size is written and read a line at a time and a
/// problem is reported by its line. The first line says what the file is; then every registered definition; then one
/// line per run, with its history and attempts, after the line of the definition it ran (an unregistered one, from
/// `skald run FILE`, comes just before its first run). Times are seconds since 1970, as both stores keep them.
///
///     {"format":"skald-export","version":1,"exportedAt":1800000000.5,"source":"skald.sqlite"}
///     {"definition":{"hash":"…","name":"checkout","version":1,"createdAt":…,"registered":true,"document":{…}}}
///     {"run":{"id":"…","definitionHash":"…","status":"running","steps":[…],…},"events":[…],"attempts":[…]}
public enum TransferFormat {
    public static let name = "skald-export"
    public static let version = 1

    public struct Header: Sendable {
        public var exportedAt: Date
        /// Where it came from, as a person names it (a path, or a URL without its password).
        public var source: String

        public init(exportedAt: Date, source: String) {
            self.exportedAt = exportedAt
            self.source = source
        }
    }

    public enum Record: Sendable {
        case header(Header)
        case definition(StoredDefinition, registered: Bool)
        /// The run's `definitionDocument` is not in its line: the reader fills it from the definition's line.
        case run(ExportedRun)
    }

    // MARK: Writing

    public static func line(_ record: Record) -> String {
        switch record {
        case .header(let header):
            return JSONValue.object([
                "format": .string(name), "version": .int(Int64(version)), "exportedAt": time(header.exportedAt),
                "source": .string(header.source),
            ]).jsonText
        case .definition(let definition, let registered):
            return JSONValue.object([
                "definition": [
                    "hash": .string(definition.hash), "name": .string(definition.name), "version": .int(Int64(definition.version)),
                    "createdAt": time(definition.createdAt), "registered": .bool(registered), "document": definition.document,
                ]
            ]).jsonText
        case .run(let exported):
            return JSONValue.object([
                "run": encode(exported.run), "events": .array(exported.events.map(encode)), "attempts": .array(exported.attempts.map(encode)),
            ]).jsonText
        }
    }

    static func time(_ date: Date) -> JSONValue { .double(date.timeIntervalSince1970) }
    static func time(_ date: Date?) -> JSONValue { date.map(time) ?? .null }
    static func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    static func int(_ value: Int?) -> JSONValue { value.map { .int(Int64($0)) } ?? .null }
    static func failure(_ failure: RunFailure?) -> JSONValue {
        failure.map { ["step": text($0.step), "reason": .string($0.reason)] } ?? .null
    }

    static func encode(_ run: StoredRun) -> JSONValue {
        let state = run.state
        return [
            "id": .string(run.id), "sagaName": .string(run.sagaName), "sagaVersion": .int(Int64(run.sagaVersion)),
            "definitionHash": .string(run.definitionHash), "input": run.input,
            "createdAt": time(run.createdAt), "updatedAt": time(run.updatedAt), "idempotencyKey": text(run.idempotencyKey),
            "status": .string(state.status.rawValue), "failure": failure(state.failure),
            "compensationFailure": failure(state.compensationFailure), "stuck": failure(state.stuck), "deadlineAt": time(state.deadlineAt),
            "traceparent": text(run.trace?.parent), "tracestate": text(run.trace?.state),
            "steps": .array(
                state.steps.map { step in
                    [
                        "name": .string(step.name), "status": .string(step.status.rawValue), "attempts": int(step.attempts),
                        "attemptsBase": int(step.attemptsBase), "compensationAttempts": int(step.compensationAttempts),
                        "compensationAttemptsBase": int(step.compensationAttemptsBase), "firstAttemptAt": time(step.firstAttemptAt),
                        "compensationFirstAttemptAt": time(step.compensationFirstAttemptAt), "dueAt": time(step.dueAt),
                        "response": step.response.map { ["status": int($0.status), "body": $0.body] } ?? .null,
                        "lastError": text(step.lastError), "outcomeUnknown": .bool(step.outcomeUnknown),
                    ]
                }),
        ]
    }

    static func encode(_ event: RunEvent) -> JSONValue {
        [
            "at": time(event.at), "kind": .string(event.kind.rawValue), "step": text(event.step), "phase": text(event.phase?.rawValue),
            "attempt": int(event.attempt), "message": .string(event.message), "data": event.data,
        ]
    }

    static func encode(_ attempt: AttemptRecord) -> JSONValue {
        [
            "step": int(attempt.key.step), "stepName": .string(attempt.key.stepName), "phase": .string(attempt.key.phase.rawValue),
            "number": int(attempt.key.number), "startedAt": time(attempt.startedAt), "sends": int(attempt.sends),
            "finishedAt": time(attempt.finishedAt), "succeeded": attempt.succeeded.map(JSONValue.bool) ?? .null,
            "httpStatus": int(attempt.httpStatus), "error": text(attempt.error), "durationMs": int(attempt.durationMs),
            "node": text(attempt.node),
        ]
    }

    // MARK: Reading

    /// Reads one line. - Throws: `TransferError` naming the line and the JSON path of what is wrong.
    public static func record(_ text: some Collection<UInt8>, line: Int) throws -> Record {
        let value: JSONValue
        do {
            value = try JSONParser.parse(Array(text)).value
        } catch {
            throw TransferError(line: line, path: nil, message: "not JSON: \(error.message) (at column \(error.location.column))")
        }
        let root = Reader(value: value, path: JSONPath(), line: line)
        if value["format"] != nil {
            guard try root.string("format") == name else {
                throw root.problem("format", "this is not a Skald export (\"format\" should be \"\(name)\")")
            }
            let fileVersion = try root.int("version")
            guard fileVersion <= version else {
                throw root.problem("version", "the file is format version \(fileVersion), newer than this Skald reads (\(version)); import it with a newer skald")
            }
            return .header(Header(exportedAt: try root.date("exportedAt"), source: try root.string("source")))
        }
        if value["definition"] != nil {
            let definition = try root.object("definition")
            return .definition(
                StoredDefinition(
                    hash: try definition.string("hash"), name: try definition.string("name"), version: try definition.int("version"),
                    document: try definition.value("document"), createdAt: try definition.date("createdAt")),
                registered: try definition.optionalBool("registered") ?? true)
        }
        if value["run"] != nil {
            let run = try root.object("run")
            let stored = try decodeRun(run)
            let events = try root.array("events").map(decodeEvent)
            let attempts = try root.array("attempts").map { try decodeAttempt($0, runID: stored.id) }
            return .run(ExportedRun(run: stored, events: events, attempts: attempts))
        }
        throw TransferError(line: line, path: nil, message: "a line must hold a \"definition\" or a \"run\" (or, first, the header)")
    }

    static func decodeRun(_ run: Reader) throws -> StoredRun {
        let id = try run.string("id")
        let steps = try run.array("steps")
        var state = RunState(id: id, stepNames: try steps.map { try $0.string("name") })
        state.status = try run.enumeration("status", RunStatus.self)
        state.failure = try run.failure("failure")
        state.compensationFailure = try run.failure("compensationFailure")
        state.stuck = try run.failure("stuck")
        state.deadlineAt = try run.optionalDate("deadlineAt")
        for (position, reader) in steps.enumerated() {
            var step = state.steps[position]
            step.status = try reader.enumeration("status", StepStatus.self)
            step.attempts = try reader.int("attempts")
            step.attemptsBase = try reader.int("attemptsBase")
            step.compensationAttempts = try reader.int("compensationAttempts")
            step.compensationAttemptsBase = try reader.int("compensationAttemptsBase")
            step.firstAttemptAt = try reader.optionalDate("firstAttemptAt")
            step.compensationFirstAttemptAt = try reader.optionalDate("compensationFirstAttemptAt")
            step.dueAt = try reader.optionalDate("dueAt")
            if let response = try reader.optionalObject("response") {
                step.response = StepResponse(status: try response.int("status"), body: try response.value("body"))
            }
            step.lastError = try reader.optionalString("lastError")
            step.outcomeUnknown = try reader.bool("outcomeUnknown")
            state.steps[position] = step
        }
        return StoredRun(
            id: id, sagaName: try run.string("sagaName"), sagaVersion: try run.int("sagaVersion"),
            definitionHash: try run.string("definitionHash"), definitionDocument: .null,
            input: try run.value("input"), createdAt: try run.date("createdAt"), updatedAt: try run.date("updatedAt"), state: state,
            idempotencyKey: try run.optionalString("idempotencyKey"),
            trace: try run.optionalString("traceparent").map { RunTrace(parent: $0, state: try run.optionalString("tracestate")) })
    }

    static func decodeEvent(_ event: Reader) throws -> RunEvent {
        RunEvent(
            at: try event.date("at"), kind: try event.enumeration("kind", RunEvent.Kind.self), step: try event.optionalString("step"),
            phase: try event.optionalString("phase").map { _ in try event.enumeration("phase", Phase.self) },
            attempt: try event.optionalInt("attempt"), message: try event.string("message"), data: try event.value("data"))
    }

    static func decodeAttempt(_ attempt: Reader, runID: String) throws -> AttemptRecord {
        AttemptRecord(
            key: AttemptKey(
                runID: runID, step: try attempt.int("step"), stepName: try attempt.string("stepName"),
                phase: try attempt.enumeration("phase", Phase.self), number: try attempt.int("number")),
            startedAt: try attempt.date("startedAt"), sends: try attempt.int("sends"), finishedAt: try attempt.optionalDate("finishedAt"),
            succeeded: try attempt.optionalBool("succeeded"), httpStatus: try attempt.optionalInt("httpStatus"),
            error: try attempt.optionalString("error"), durationMs: try attempt.optionalInt("durationMs"),
            node: try attempt.optionalString("node"))
    }

    /// Reads members of one object, each failure naming the line and the member's JSON path.
    struct Reader {
        var value: JSONValue
        var path: JSONPath
        var line: Int

        func problem(_ key: String, _ message: String) -> TransferError {
            TransferError(line: line, path: path.appending(key), message: message)
        }

        func value(_ key: String) throws -> JSONValue {
            guard let member = value[key] else { throw problem(key, "is missing") }
            return member
        }
        private func present(_ key: String) -> JSONValue? {
            guard let member = value[key], member != .null else { return nil }
            return member
        }
        private func wrongType(_ key: String, _ expected: String) -> TransferError {
            problem(key, "should be \(expected), not \(value[key]?.typeName ?? "missing")")
        }

        func string(_ key: String) throws -> String {
            guard let text = try value(key).stringValue else { throw wrongType(key, "a string") }
            return text
        }
        func optionalString(_ key: String) throws -> String? {
            guard let member = present(key) else { return nil }
            guard let text = member.stringValue else { throw wrongType(key, "a string or null") }
            return text
        }
        func int(_ key: String) throws -> Int {
            guard let number = try value(key).intValue, let int = Int(exactly: number) else { throw wrongType(key, "a whole number") }
            return int
        }
        func optionalInt(_ key: String) throws -> Int? {
            guard present(key) != nil else { return nil }
            return try int(key)
        }
        func bool(_ key: String) throws -> Bool {
            guard let flag = try value(key).boolValue else { throw wrongType(key, "true or false") }
            return flag
        }
        func optionalBool(_ key: String) throws -> Bool? {
            guard present(key) != nil else { return nil }
            return try bool(key)
        }
        func date(_ key: String) throws -> Date {
            guard let seconds = try value(key).doubleValue, seconds.isFinite else { throw wrongType(key, "a time in seconds since 1970") }
            guard seconds >= 0, seconds <= SagaMachine.latestStoredTime.timeIntervalSince1970 else {
                throw problem(key, "\(seconds) is not a time from 1970 to 9999 (in seconds since 1970)")
            }
            return Date(timeIntervalSince1970: seconds)
        }
        func optionalDate(_ key: String) throws -> Date? {
            guard present(key) != nil else { return nil }
            return try date(key)
        }
        func enumeration<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws -> T where T.RawValue == String {
            let raw = try string(key)
            guard let value = T(rawValue: raw) else {
                throw problem(key, "\"\(raw)\" is not one of \(T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            }
            return value
        }
        func object(_ key: String) throws -> Reader {
            guard case .object = try value(key) else { throw wrongType(key, "an object") }
            return Reader(value: value[key]!, path: path.appending(key), line: line)
        }
        func optionalObject(_ key: String) throws -> Reader? {
            guard present(key) != nil else { return nil }
            return try object(key)
        }
        func array(_ key: String) throws -> [Reader] {
            guard let items = try value(key).arrayValue else { throw wrongType(key, "an array") }
            return items.enumerated().map { Reader(value: $1, path: path.appending(key).appending($0), line: line) }
        }
        func failure(_ key: String) throws -> RunFailure? {
            guard let failure = try optionalObject(key) else { return nil }
            return RunFailure(step: try failure.optionalString("step"), reason: try failure.string("reason"))
        }
    }
}

/// A problem in an export file: its line, where in the line, and what is wrong.
public struct TransferError: Error, Sendable, CustomStringConvertible {
    public var line: Int
    public var path: JSONPath?
    public var message: String

    public init(line: Int, path: JSONPath?, message: String) {
        self.line = line
        self.path = path
        self.message = message
    }

    public var description: String { "line \(line)\(path.map { ": \($0)" } ?? ""): \(message)" }
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
                    run: run, events: try await store.events(runID: run.id), attempts: try await store.attempts(runID: run.id))
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
        guard run.state.steps.map(\.name) == names else {
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
        let inputLimit = DataKey.containsSealed(run.input) ? RunLimits.maxInputBytes * 2 : RunLimits.maxInputBytes
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
        }
        for (index, event) in exported.events.enumerated() {
            texts.append((JSONPath().appending("events").appending(index).appending("message"), event.message))
            texts.append((JSONPath().appending("events").appending(index).appending("step"), event.step))
        }
        for (index, attempt) in exported.attempts.enumerated() {
            texts.append((JSONPath().appending("attempts").appending(index).appending("error"), attempt.error))
            texts.append((JSONPath().appending("attempts").appending(index).appending("node"), attempt.node))
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
            guard names.indices.contains(attempt.key.step), names[attempt.key.step] == attempt.key.stepName else {
                throw problem(at.appending("step"), "no step \(attempt.key.step) named \(attempt.key.stepName) in the run's definition")
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
                    message: "the database has another definition \(definition.name) version \(definition.version) than the file; nothing was imported. Register the file's under a new version, or import into another database")
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
        let tally = try await store.importRuns(events: [note], from: reader.next)
        counts.runs = tally.imported
        counts.unfinished = tally.unfinished
        counts.alreadyPresent = tally.alreadyPresent
        return counts
    }
}

/// The run lines of a checked file, read one at a time inside the import's transaction.
final class RunLineReader: @unchecked Sendable {
    // One transaction calls `next` at a time; the lock makes that a rule rather than a hope.
    private let lock = NSLock()
    private var lines: any IteratorProtocol<[UInt8]>
    private var number = 0
    private let checked: StoreTransfer.Checked
    private let definitions: [String: SagaDefinition]
    private var machines: [String: SagaMachine] = [:]

    init(lines: some Sequence<[UInt8]>, checked: StoreTransfer.Checked) {
        self.lines = lines.makeIterator()
        self.checked = checked
        definitions = Dictionary(checked.definitions.map { ($0.definition.contentHash, $0.definition) }, uniquingKeysWith: { first, _ in first })
    }

    func next() throws -> ExportedRun? {
        try lock.withLock {
            while let bytes = lines.next() {
                number += 1
                guard bytes.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }),
                    case .run(var exported) = try TransferFormat.record(bytes, line: number)
                else { continue }
                guard let document = checked.document(exported.run.definitionHash) else {
                    throw TransferError(line: number, path: JSONPath().appending("run").appending("definitionHash"), message: "the file changed since it was checked")
                }
                // Checked again as it is read: a line changed since the check is refused, not imported.
                try StoreTransfer.checkRun(exported, line: number, definitions: definitions, machines: &machines)
                exported.run.definitionDocument = document
                return exported
            }
            return nil
        }
    }
}

/// The lines of a file, read a megabyte at a time: each line's bytes without its newline.
public struct FileLines: Sequence, Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public func makeIterator() -> Iterator { Iterator(handle: FileHandle(forReadingAtPath: path)) }

    public struct Iterator: IteratorProtocol {
        let handle: FileHandle?
        var buffer: [UInt8] = []
        var start = 0
        /// Where the search for the next newline goes on from: the bytes before it are known to hold none, so a
        /// long line is scanned once, not once per chunk read (which made a 100 MB line take minutes).
        var scanned = 0
        var done = false

        public mutating func next() -> [UInt8]? {
            while true {
                if let newline = buffer[Swift.max(start, scanned)...].firstIndex(of: 0x0A) {
                    let line = Array(buffer[start..<newline])
                    start = newline + 1
                    scanned = start
                    return line
                }
                scanned = buffer.count
                if done {
                    guard start < buffer.count else { return nil }
                    let line = Array(buffer[start...])
                    start = buffer.count
                    return line
                }
                if start > 0 {
                    buffer.removeFirst(start)
                    scanned -= start
                    start = 0
                }
                let chunk = handle?.readData(ofLength: 1 << 20) ?? Data()
                if chunk.isEmpty { done = true } else { buffer.append(contentsOf: chunk) }
            }
        }
    }
}

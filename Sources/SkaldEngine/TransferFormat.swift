import Foundation
import SkaldCore

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
            var line: [String: JSONValue] = [
                "run": encode(exported.run), "events": .array(exported.events.map(encode)), "attempts": .array(exported.attempts.map(encode)),
            ]
            if !exported.callbacks.isEmpty { line["callbacks"] = .array(exported.callbacks.map(encode)) }
            return JSONValue.object(line).jsonText
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
                        "resolution": step.resolution.map { ["by": .string($0.by), "note": .string($0.note), "at": time($0.at)] } ?? .null,
                        "wait": step.wait.map { wait in
                            [
                                "kind": .string(wait.kind.rawValue), "since": time(wait.since), "until": time(wait.until),
                                "prompt": text(wait.prompt), "token": text(wait.token), "attempt": int(wait.attempt),
                                "heartbeatAt": time(wait.heartbeatAt), "output": wait.output ?? .null,
                            ]
                        } ?? .null,
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

    /// A callback a participant posted that was stored and not yet applied to its run (the server stopped in between).
    static func encode(_ callback: StoredCallback) -> JSONValue {
        var status: JSONValue = .null
        var output: JSONValue = .null
        var error: JSONValue = .null
        switch callback.final {
        case .succeeded(let value)?: (status, output) = ("succeeded", value)
        case .failed(let reason)?: (status, error) = ("failed", .string(reason))
        case .heartbeat?, nil: break
        }
        return [
            "step": int(callback.step), "attempt": int(callback.attempt), "token": text(callback.token), "status": status, "output": output,
            "error": error, "receivedAt": time(callback.receivedAt), "heartbeatAt": time(callback.heartbeatAt),
        ]
    }

    static func decodeCallback(_ callback: Reader, runID: String) throws -> StoredCallback {
        var final: CallbackSignal?
        switch try callback.optionalString("status") {
        case "succeeded"?: final = .succeeded(output: callback.value["output"] ?? .null)
        case "failed"?: final = .failed(error: try callback.string("error"))
        case nil: final = nil
        case let other?: throw callback.problem("status", "\"\(other)\" is not \"succeeded\", \"failed\" or null")
        }
        return StoredCallback(
            runID: runID, step: try callback.int("step"), attempt: try callback.int("attempt"), final: final,
            receivedAt: try callback.optionalDate("receivedAt"), heartbeatAt: try callback.optionalDate("heartbeatAt"),
            token: try callback.string("token"))
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
            // Absent from files written before callbacks could be stored and not yet applied.
            let callbacks = try root.value["callbacks"] == nil ? [] : root.array("callbacks").map { try decodeCallback($0, runID: stored.id) }
            return .run(ExportedRun(run: stored, events: events, attempts: attempts, callbacks: callbacks))
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
            // Absent from files written before steps could be resolved by hand.
            if let resolution = try reader.optionalObject("resolution") {
                step.resolution = StepResolution(by: try resolution.string("by"), note: try resolution.string("note"), at: try resolution.date("at"))
            }
            // Absent from files written before steps could wait.
            if let wait = try reader.optionalObject("wait") {
                step.wait = StepWait(
                    kind: try wait.enumeration("kind", WaitKind.self), since: try wait.date("since"), until: try wait.date("until"),
                    prompt: try wait.optionalString("prompt"))
                // Absent from files written before callback steps travelled with their token and output.
                step.wait?.token = try wait.optionalString("token")
                step.wait?.attempt = try wait.optionalInt("attempt")
                step.wait?.heartbeatAt = try wait.optionalDate("heartbeatAt")
                step.wait?.output = wait.value["output"].flatMap { $0 == .null ? nil : $0 }
            }
            state.steps[position] = step
        }
        state.linkElements()
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

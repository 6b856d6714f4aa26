import ArgumentParser
import Foundation
import Logging
import SkaldCore
import Synchronization

/// `--log-format json`: one JSON object per line on standard output, with `timestamp` (RFC 3339, milliseconds,
/// UTC), `level`, `logger`, `message`, and the record's metadata as members (`run_id`, `saga`, `step`, `phase`,
/// `attempt`, `trace_id`, `event`, `error`, … where they apply).
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var record: [String: JSONValue] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { record[key] = Self.json(value) }
        if let error = event.error { record["error"] = .string("\(error)") }
        record["timestamp"] = .string(Self.timestamp(Date()))
        record["level"] = .string(event.level.rawValue)
        record["logger"] = .string(label)
        record["message"] = .string(event.message.description)
        JSONLogHandler.write(JSONValue.object(record).jsonText)
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let items): .array(items.map(json))
        case .dictionary(let members): .object(members.mapValues(json))
        }
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    /// Whole lines, one writer at a time, so records from different threads never interleave.
    private static let output = Mutex(())
    static func write(_ line: String) {
        output.withLock { _ in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }
}

/// swift-log's text lines, as `skald serve` prints its own: warnings and errors on standard error, everything else
/// (info, notice, and debug when asked for) on standard output.
struct SplitStreamLogHandler: LogHandler {
    private var quiet: StreamLogHandler
    private var loud: StreamLogHandler

    init(label: String) {
        quiet = StreamLogHandler.standardOutput(label: label)
        loud = StreamLogHandler.standardError(label: label)
    }

    var logLevel: Logger.Level {
        get { quiet.logLevel }
        set {
            quiet.logLevel = newValue
            loud.logLevel = newValue
        }
    }

    var metadata: Logger.Metadata {
        get { quiet.metadata }
        set {
            quiet.metadata = newValue
            loud.metadata = newValue
        }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { quiet[metadataKey: key] }
        set {
            quiet[metadataKey: key] = newValue
            loud[metadataKey: key] = newValue
        }
    }

    func log(event: LogEvent) {
        if event.level >= .warning { loud.log(event: event) } else { quiet.log(event: event) }
    }
}

/// `--log-format` and `--log-level` of `skald serve`.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "text: human-readable lines (the default); json: one JSON object per line on standard output, for a log collector.")
    var logFormat = "text"

    @Option(name: .long, help: "The least severe records written: trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    var isJSON: Bool { logFormat == "json" }
    var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .info }

    func validate() throws {
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json, not \"\(logFormat)\"") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical, not \"\(logLevel)\"")
        }
    }

    /// Sets up swift-log for the process: JSON records, or swift-log's own text lines on standard error.
    func bootstrap() {
        let level = level
        if isJSON {
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        } else {
            LoggingSystem.bootstrap { label in
                var handler = SplitStreamLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// What `skald serve` says as it works: plain lines (info on standard output, warnings and errors on standard error,
/// as before), or, with `--log-format json`, log records with the same words and their metadata.
struct ServeOutput: Sendable {
    let json: Bool
    let logger: Logger

    func info(_ text: String, _ metadata: Logger.Metadata = [:]) {
        if json {
            logger.info("\(text)", metadata: metadata)
        } else {
            print(text)
            fflush(nil)
        }
    }

    func warning(_ text: String, _ metadata: Logger.Metadata = [:]) {
        if json { logger.warning("\(text)", metadata: metadata) } else { printError("warning: \(text)") }
    }

    func error(_ text: String, _ metadata: Logger.Metadata = [:]) {
        if json { logger.error("\(text)", metadata: metadata) } else { printError("error: \(text)") }
    }
}

import ArgumentParser
import Foundation
import SkaldCore
import Synchronization

/// `skald serve`'s settings from outside its command line: each option may also be set by an environment variable
/// (`--shutdown-timeout` by `SKALD_SHUTDOWN_TIMEOUT`) and by a JSON file (`--config FILE` or `SKALD_CONFIG`, whose
/// keys are the options' names: `{"port": 7400, "shutdown-timeout": "30s"}`).
///
/// Precedence: a flag on the command line, then the environment, then the file, then the option's default. Each
/// setting comes whole from one place (a list such as `allowed-host` too). The winners are turned into the flags
/// they stand for and parsed with the rest, so every value is checked as its flag is; a bad one is reported with
/// where it came from.
enum ServeSettings {
    /// An option that can be set outside the command line.
    struct Option: Sendable {
        enum Kind: Sendable {
            case value
            /// Repeatable (`allowed-host`): a list in the file, comma-separated in the environment.
            case list
            /// A flag without a value (`metrics-public`): `true` or `false`.
            case flag
        }

        var name: String
        var kind: Kind = .value
        /// Shown masked by `--print-config`.
        var isSecret = false

        var flag: String { "--" + name }
        var environmentName: String { "SKALD_" + name.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    static let options: [Option] = [
        Option(name: "db", isSecret: true), Option(name: "durability"), Option(name: "busy-timeout"),
        Option(name: "host"), Option(name: "port"), Option(name: "sagas"), Option(name: "participants"),
        Option(name: "concurrency"), Option(name: "token", isSecret: true), Option(name: "data-key", isSecret: true),
        Option(name: "allow-env"), Option(name: "allowed-host", kind: .list), Option(name: "max-connections"),
        Option(name: "read-timeout"), Option(name: "max-long-polls"), Option(name: "max-response-bytes"),
        Option(name: "shutdown-timeout"), Option(name: "lease"), Option(name: "park-after"), Option(name: "public-url"), Option(name: "prune-older-than"),
        Option(name: "metrics-public", kind: .flag), Option(name: "log-format"), Option(name: "log-level"),
    ]

    /// Where an effective setting came from.
    enum Source: Sendable, Equatable, CustomStringConvertible {
        case commandLine
        case environment(String)
        case file(String)

        var description: String {
            switch self {
            case .commandLine: "command line"
            case .environment(let name): "environment \(name)"
            case .file(let path): "file \(path)"
            }
        }
    }

    /// What `expand` found, by option name, for `--print-config`.
    static let sources = Mutex<[String: Source]>([:])

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// `serve`'s arguments with the settings from the environment and the file added before the command line's own.
    /// - Parameter arguments: the command line after the program's name, starting with `serve`.
    static func expand(_ arguments: [String], environment: [String: String]) throws(Problem) -> [String] {
        let given = Set(arguments.dropFirst().compactMap { argument -> String? in
            guard argument.hasPrefix("--") else { return nil }
            return String(argument.dropFirst(2).prefix { $0 != "=" })
        })
        var found: [String: Source] = [:]
        for option in options where given.contains(option.name) { found[option.name] = .commandLine }

        let configPath = value(of: "config", in: arguments) ?? environment["SKALD_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let file = try configPath.map { path throws(Problem) in try read(path) } ?? [:]

        var added: [String] = []
        for option in options where found[option.name] == nil {
            let source: Source
            let values: [String]
            if let text = environment[option.environmentName], !text.isEmpty {
                source = .environment(option.environmentName)
                values = try fromEnvironment(text, option)
            } else if let value = file[option.name], let configPath {
                source = .file(configPath)
                values = try fromFile(value, option, configPath)
            } else {
                continue
            }
            found[option.name] = source
            let flags = values.flatMap { option.kind == .flag ? [option.flag] : [option.flag, $0] }
            // Checked alone first, so that a bad value is reported with where it came from.
            do {
                _ = try ServeCommand.parse(flags)
            } catch {
                throw Problem(description: "\(source): \(ServeCommand.message(for: error))")
            }
            added += flags
        }
        sources.withLock { $0 = found }
        return [arguments[0]] + added + arguments.dropFirst()
    }

    /// The value given to `--name VALUE` or `--name=VALUE`.
    static func value(of name: String, in arguments: [String]) -> String? {
        for (index, argument) in arguments.enumerated() {
            if argument == "--" + name, index + 1 < arguments.count { return arguments[index + 1] }
            if argument.hasPrefix("--\(name)=") { return String(argument.dropFirst(name.count + 3)) }
        }
        return nil
    }

    static func fromEnvironment(_ text: String, _ option: Option) throws(Problem) -> [String] {
        switch option.kind {
        case .value: return [text]
        case .list: return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .flag:
            switch text.lowercased() {
            case "true", "1", "yes": return [""]
            case "false", "0", "no": return []
            default: throw Problem(description: "environment \(option.environmentName): must be true or false, not \"\(text)\"")
            }
        }
    }

    static func fromFile(_ value: JSONValue, _ option: Option, _ path: String) throws(Problem) -> [String] {
        let wrong = Problem(
            description: "\(path): \"\(option.name)\" must be \(option.kind == .flag ? "true or false" : option.kind == .list ? "an array of strings" : "a string or a number"), not \(value.typeName)")
        switch (option.kind, value) {
        case (.value, .string(let text)): return [text]
        case (.value, .int(let number)): return [String(number)]
        case (.list, .array(let items)):
            return try items.map { item throws(Problem) in
                guard case .string(let text) = item else { throw wrong }
                return text
            }
        case (.flag, .bool(let on)): return on ? [""] : []
        default: throw wrong
        }
    }

    /// The file's settings by option name.
    static func read(_ path: String) throws(Problem) -> [String: JSONValue] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Problem(description: "--config \(path): cannot read it; check the path")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(Array(data)).value
        } catch {
            throw Problem(description: "\(path):\(error.location): \(error.message)")
        }
        guard case .object(let members) = value else {
            throw Problem(description: "\(path): must be a JSON object of settings, such as {\"port\": 7400}, not \(value.typeName)")
        }
        let known = Set(options.map(\.name))
        let unknown = members.keys.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw Problem(
                description: "\(path): unknown setting\(unknown.count == 1 ? "" : "s") \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")); the settings are \(options.map(\.name).joined(separator: ", "))")
        }
        return members
    }
}

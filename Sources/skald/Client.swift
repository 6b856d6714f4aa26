import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SkaldAPI
import SkaldCore

struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "The Skald server (default: $SKALD_SERVER, else http://127.0.0.1:7400).")
    var server: String?

    @Option(name: .long, help: "The bearer token, if the server needs one (default: $SKALD_TOKEN).")
    var token: String?

    @Flag(name: .long, help: "Print the API's JSON instead of a table.")
    var json = false

    var baseURL: String {
        let environment = ProcessInfo.processInfo.environment
        var url = server ?? environment["SKALD_SERVER"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:7400"
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    var bearer: String? { token ?? ProcessInfo.processInfo.environment["SKALD_TOKEN"].flatMap { $0.isEmpty ? nil : $0 } }
}

/// An answer from the API that is an error.
struct APIFailure: Error {
    var status: Int
    var code: String
    var message: String
    var details: JSONValue?
}

/// Talks to a running `skald serve`.
struct SkaldClient {
    let options: ClientOptions
    let http: HTTPClient

    static func with<T>(_ options: ClientOptions, _ body: (SkaldClient) async throws -> T) async throws -> T {
        // A refused connection means no server: say so at once instead of retrying until a timeout.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(SkaldClient(options: options, http: http))
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw Self.exit(for: error, options: options)
        }
    }

    /// Prints what went wrong in one line (or a few, for validation problems) and picks the exit code.
    static func exit(for error: any Error, options: ClientOptions) -> any Error {
        switch error {
        case let failure as APIFailure:
            if options.json {
                // A script that asked for JSON gets its errors as JSON too, on standard output like its answers.
                var error: [String: JSONValue] = ["code": .string(failure.code), "message": .string(failure.message), "status": .int(Int64(failure.status))]
                if let details = failure.details { error["details"] = details }
                print(JSONValue.object(["error": .object(error)]).prettyText)
            } else {
                // The API points at its own route; on the command line the verb that lists runs is the pointer.
                printError("error: \(failure.message.replacingOccurrences(of: "; GET /v1/runs lists them", with: "; `skald list` shows the runs"))")
            }
            return failure.status == 422 || failure.status == 400 ? Exit.invalid : Exit.failure
        case let exit as ExitCode:
            return exit
        case is CancellationError:
            return Exit.failure
        default:
            let text = String(describing: error)
            let (code, message) = text.contains("connect") || text.contains("Connection refused") || error is HTTPClientError
                ? ("no_server", "no Skald server answers at \(options.baseURL). Start one with `skald serve` (or point --server / SKALD_SERVER at it).")
                : ("client_error", text)
            if options.json {
                print(JSONValue.object(["error": ["code": .string(code), "message": .string(message)]]).prettyText)
            } else {
                printError("error: \(message)")
            }
            return Exit.failure
        }
    }

    /// The answer read as one of the API's shapes, with the JSON it came as (printed as it is for `--json`).
    func get<Shape: APIObject>(_ shape: Shape.Type, _ path: String) async throws -> Answer<Shape> {
        let (status, body) = try await send(.GET, path)
        return Answer(status: status, value: try Self.read(shape, body, "GET \(path)"), json: body)
    }

    func post<Shape: APIObject>(_ shape: Shape.Type, _ path: String, _ request: some APIObject, headers: [(String, String)] = []) async throws
        -> Answer<Shape>
    {
        let (status, body) = try await send(.POST, path, body: Array(request.json().jsonText.utf8), headers: headers)
        return Answer(status: status, value: try Self.read(shape, body, "POST \(path)"), json: body)
    }

    static func read<Shape: APIObject>(_ shape: Shape.Type, _ body: JSONValue, _ what: String) throws -> Shape {
        do {
            return try Shape(json: body)
        } catch let error as DecodingError {
            throw UnreadableAnswer(request: what, problem: JSONValueCoding.describe(error))
        }
    }

    func send(
        _ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = [], timeout: Duration = .seconds(60)
    ) async throws -> (status: Int, body: JSONValue) {
        var request = HTTPClientRequest(url: options.baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let bearer = options.bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        // The server refuses a POST that is not declared as JSON, even an empty one.
        if body != nil || method == .POST { request.headers.add(name: "Content-Type", value: "application/json") }
        let response = try await http.execute(request, timeout: .seconds(Int64(timeout.seconds)))
        let buffer = try await response.body.collect(upTo: 64 << 20)
        let value = (try? JSONParser.parse(Array(buffer.readableBytesView)).value) ?? .string(String(buffer: buffer))
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            guard let error = try? ErrorBody(json: value).error else {
                throw APIFailure(status: status, code: "http_\(status)", message: "the server answered HTTP \(status)", details: nil)
            }
            throw APIFailure(status: status, code: error.code, message: error.message, details: error.details)
        }
        return (status, value)
    }
}

/// An answer of the API, read as one of its shapes.
struct Answer<Shape: APIObject> {
    var status: Int
    var value: Shape
    /// As it came, for `--json`.
    var json: JSONValue
}

/// An answer that does not read as the API's shape for it: a server of another version, or not a Skald server.
struct UnreadableAnswer: Error, CustomStringConvertible {
    var request: String
    var problem: String
    var description: String {
        "the answer to \(request) does not read as this version of skald expects (\(problem)); is the server a different version of Skald? (`skald --version` on both)"
    }
}

/// Percent-encodes a value for a URL path segment or query.
func urlComponent(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? text
}

// MARK: - Output helpers

enum Table {
    /// Aligned columns; the last column is not padded.
    static func render(_ header: [String], _ rows: [[String]], style: ProgressPrinter.Style) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { visibleWidth($0[column]) }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell + String(repeating: " ", count: max(0, widths[index] - visibleWidth(cell)))
            }.joined(separator: "  ")
        }
        return ([style.bold(line(header))] + rows.map(line)).joined(separator: "\n")
    }
}

/// The characters a terminal shows: colour codes (`ESC [ … m`) take no room.
func visibleWidth(_ text: String) -> Int {
    var width = 0
    var inEscape = false
    for character in text {
        if inEscape {
            if character == "m" { inEscape = false }
        } else if character == "\u{1B}" {
            inEscape = true
        } else {
            width += 1
        }
    }
    return width
}

enum RelativeTime {
    static func describe(_ date: Date?, now: Date = Date()) -> String {
        guard let date else { return "-" }
        let seconds = now.timeIntervalSince(date)
        if seconds < 0 { return "in " + DurationText.format(.seconds(Int64(-seconds))) }
        if seconds < 1 { return "just now" }
        if seconds < 86_400 { return DurationText.format(.seconds(Int64(seconds))) + " ago" }
        return date.formatted(date: .abbreviated, time: .shortened)
    }
}

extension RunStatus {
    func painted(_ style: ProgressPrinter.Style) -> String {
        switch self {
        case .completed: style.green(rawValue)
        case .compensated, .compensating: style.yellow(rawValue)
        case .compensationFailed, .stuck: style.red(rawValue)
        case .running, .abandoned: rawValue
        }
    }
}

extension RunEvent {
    /// An event as the API sends it; nil for a kind this version does not know.
    init?(_ view: EventView) {
        guard let kind = Kind(rawValue: view.kind) else { return nil }
        self.init(
            at: view.at, kind: kind, step: view.step, phase: view.phase.flatMap(Phase.init(rawValue:)), attempt: view.attempt,
            message: view.message, data: view.data)
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SkaldCore
import SkaldTestSupport

/// `skald serve` as a child process on a port the system picks.
final class ServeProcess: @unchecked Sendable {
    let process: SkaldProcess
    let url: String

    /// - Parameter sagas: the folder for `--sagas` (the examples by default; `PatientSagas.folder` for tests that hold calls;
    ///   nil for none).
    init(db: String, environment: [String: String], in folder: URL, sagas: String? = "Sagas", extra: [String] = []) async throws {
        process = try SkaldProcess(
            ["serve", "--db", db, "--port", "0"] + (sagas.map { ["--sagas", $0] } ?? []) + extra, environment: environment, in: folder)
        try await waitFor("skald serve to listen") { [process] in
            process.stdout.contains("skald serve: listening on ") || !process.isRunning
        }
        let line = process.stdout.split(separator: "\n").first { $0.contains("skald serve: listening on ") }
        guard let found = line?.components(separatedBy: "listening on ").last?.components(separatedBy: " ").first else { throw TimedOut(what: "skald serve to listen; it said: \(process.stdout)\(process.stderr)") }
        url = found
    }

    /// On PostgreSQL, the node id the server printed when it started listening.
    var node: String? {
        let line = process.stdout.split(separator: "\n").first { $0.contains("skald serve: listening on ") }
        return line?.components(separatedBy: ", node ").dropFirst().first?.components(separatedBy: CharacterSet(charactersIn: ",)")).first
    }

    func terminate() { process.terminate() }
    func kill9() { process.kill() }
    func waitForExit() async -> Int32 { await process.waitForExit() }
}

/// A small JSON client for the tests' own calls to the API.
struct APIClient {
    let http: HTTPClient
    let base: String
    var token: String?

    func call(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil, timeout: Duration = .seconds(60)) async throws
        -> (status: Int, json: JSONValue)
    {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(string: body.jsonText)) }
        if body != nil || method == .POST { request.headers.add(name: "Content-Type", value: "application/json") }
        let response = try await http.execute(request, timeout: .milliseconds(Int64(timeout.components.seconds * 1000)))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), (try? JSONParser.parse(String(buffer: buffer))) ?? .null)
    }

    /// A GET whose answer is text (`/metrics`).
    func text(_ path: String) async throws -> (status: Int, text: String) {
        var request = HTTPClientRequest(url: base + path)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await http.execute(request, timeout: .seconds(60))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 16 << 20)))
    }
}

func withHTTPClient<T>(_ body: (HTTPClient) async throws -> T) async throws -> T {
    // A request waits for a pooled connection at most the connect timeout: with a hundred requests at once on a
    // busy machine, the default 8 connections and 10 s were not enough. Waiting is not what the tests are about.
    var configuration = HTTPClient.Configuration()
    configuration.timeout.connect = .seconds(120)
    configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 128)
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    do {
        let result = try await body(http)
        try await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}

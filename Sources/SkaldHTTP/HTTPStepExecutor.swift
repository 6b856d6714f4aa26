import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SkaldCore
import SkaldEngine
import Synchronization

/// Sends attempts with AsyncHTTPClient: renders the call's templates, adds the idempotency and tracing
/// headers, enforces the per-attempt deadline and the response size limit, and classifies the outcome.
public struct HTTPStepExecutor: StepExecutor {
    public static let defaultMaxResponseBytes = 1 << 20

    let clients: [HTTPClient]
    let maxResponseBytes: Int
    private let next = StepClientCounter()

    /// - Parameter client: a client whose lifetime the caller manages (see `HTTPClient.makeForSteps()`).
    public init(client: HTTPClient, maxResponseBytes: Int = defaultMaxResponseBytes) {
        self.clients = [client]
        self.maxResponseBytes = maxResponseBytes
    }

    /// Spreads attempts over several clients (see `StepHTTPClients`).
    public init(clients: StepHTTPClients, maxResponseBytes: Int = defaultMaxResponseBytes) {
        self.clients = clients.clients
        self.maxResponseBytes = maxResponseBytes
    }

    public func execute(_ step: StepRequest) async -> AttemptOutcome {
        // No value from the server's environment leaves in an error: not in the URL it shows, not in a
        // participant's error answer that quotes the request (masked before it is cut short for the reason,
        // so no part of a value survives the cut).
        let names = step.call.references.compactMap { reference -> String? in
            if case .env(let name) = reference { return name }
            return nil
        }
        let context = step.context
        let mask: @Sendable (String) -> String = { text in
            names.isEmpty ? text : context.maskingEnvironment(in: text, names: names)
        }
        let outcome = await send(step, mask: mask)
        guard !names.isEmpty, case .failed(var failure) = outcome else { return outcome }
        failure.reason = mask(failure.reason)
        return .failed(failure)
    }

    private func send(_ step: StepRequest, mask: @Sendable (String) -> String) async -> AttemptOutcome {
        let client = clients.count == 1 ? clients[0] : clients[next.take() % clients.count]
        let request: HTTPClientRequest
        do {
            request = try Self.render(step)
        } catch {
            return .failed(AttemptFailure(kind: .request, reason: "cannot build the request: \(error.message)", isRetryable: false))
        }
        let timeout = step.call.timeout
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            (response, body) = try await Self.exchange(request, on: client, within: timeout, maxResponseBytes: maxResponseBytes)
        } catch is NIOTooManyBytesError {
            return .failed(
                AttemptFailure(
                    kind: .responseTooLarge,
                    reason: "the response body is larger than the limit of \(maxResponseBytes) bytes (raise --max-response-bytes or make the participant answer with less)",
                    isRetryable: false))
        } catch is AttemptDeadlineExceeded {
            return .failed(AttemptFailure(kind: .timeout, reason: "no complete response within \(DurationText.format(timeout))", isRetryable: true))
        } catch let error as HTTPClientError where error == .connectTimeout {
            // No connection, so the request was never sent.
            return .failed(
                AttemptFailure(
                    kind: .timeout, reason: "could not connect within \(DurationText.format(timeout))", isRetryable: true,
                    mayHaveApplied: false))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return .failed(AttemptFailure(kind: .timeout, reason: "no complete response within \(DurationText.format(timeout))", isRetryable: true))
        } catch {
            let shownURL = (try? step.context.masked.render(step.call.url, encodingForURL: true)) ?? "the participant"
            return .failed(
                AttemptFailure(
                    kind: .transport, reason: Self.describeTransport(error, url: shownURL), isRetryable: true,
                    mayHaveApplied: !Self.neverSent(error)))
        }

        let stepResponse = StepResponse(status: Int(response.status.code), body: Self.decodeBody(body))
        let classification = step.call.statusRules.classify(stepResponse.status)
        switch classification {
        case .success:
            return .succeeded(stepResponse)
        case .retryable, .permanent:
            let isRetryable = classification == .retryable
            let stepResponse = StepResponse(status: stepResponse.status, body: stepResponse.body.mappingStrings(mask))
            return .failed(
                AttemptFailure(
                    kind: .status, reason: Self.describeStatus(response.status, body: stepResponse.body), isRetryable: isRetryable,
                    retryAfter: response.headers.first(name: "retry-after").flatMap(Self.parseRetryAfter),
                    response: stepResponse))
        }
    }

    /// Sends the request and reads the whole response body, all within `timeout`.
    ///
    /// AsyncHTTPClient's deadline ends when the response head arrives; a participant that sends its head and then
    /// stalls the body would hold the attempt forever. So the whole exchange races a timer, and the loser is
    /// cancelled (which cancels the request and closes its connection).
    static func exchange(_ request: HTTPClientRequest, on client: HTTPClient, within timeout: Duration, maxResponseBytes: Int)
        async throws -> (HTTPClientResponse, ByteBuffer)
    {
        try await withThrowingTaskGroup(of: (HTTPClientResponse, ByteBuffer)?.self) { group in
            group.addTask {
                let response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.milliseconds * 1_000_000)))
                let body = try await response.body.collect(upTo: maxResponseBytes)
                return (response, body)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let exchanged = first else { throw AttemptDeadlineExceeded() }
            return exchanged
        }
    }

    static func render(_ step: StepRequest) throws(TemplateRenderError) -> HTTPClientRequest {
        let call = step.call
        let context = step.context
        var request = HTTPClientRequest(url: try context.render(call.url, encodingForURL: true))
        request.method = HTTPMethod(rawValue: call.method)
        for header in call.headers {
            request.headers.add(name: header.name, value: try context.render(header.value))
        }
        if let body = call.body {
            let json = try context.render(body)
            if !request.headers.contains(name: "content-type") {
                request.headers.add(name: "Content-Type", value: "application/json")
            }
            request.body = .bytes(ByteBuffer(string: json.jsonText))
        }
        if !request.headers.contains(name: "accept") {
            request.headers.add(name: "Accept", value: "application/json")
        }
        let key = step.attempt
        request.headers.add(name: "Idempotency-Key", value: key.idempotencyKey)
        request.headers.add(name: "Skald-Run", value: key.runID)
        request.headers.add(name: "Skald-Step", value: key.stepName)
        request.headers.add(name: "Skald-Phase", value: key.phase.rawValue)
        request.headers.add(name: "Skald-Attempt", value: String(key.number))
        if let trace = step.trace {
            let headers = trace.headers(for: key)
            request.headers.replaceOrAdd(name: "traceparent", value: headers.traceparent)
            if let state = headers.tracestate { request.headers.replaceOrAdd(name: "tracestate", value: state) } else { request.headers.remove(name: "tracestate") }
        }
        return request
    }

    /// JSON when the body parses as JSON, the text otherwise, null when empty.
    static func decodeBody(_ buffer: ByteBuffer) -> JSONValue {
        guard buffer.readableBytes > 0 else { return .null }
        let bytes = Array(buffer.readableBytesView)
        if let document = try? JSONParser.parse(bytes) { return document.value }
        return .string(String(decoding: bytes, as: UTF8.self))
    }

    static func describeStatus(_ status: HTTPResponseStatus, body: JSONValue) -> String {
        var text = "HTTP \(status.code) \(status.reasonPhrase)"
        if body != .null {
            var snippet = body.interpolationText
            if snippet.count > 200 { snippet = String(snippet.prefix(200)) + "…" }
            text += ": \(snippet)"
        }
        return text
    }

    static func describeTransport(_ error: any Error, url: String) -> String {
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") {
            return "connection refused by \(hostPart(of: url)) (is the participant running?)"
        }
        if let error = error as? HTTPClientError {
            if error == .remoteConnectionClosed { return "the participant closed the connection before answering" }
            if error == .invalidURL || error == .emptyHost || error == .emptyScheme { return "the URL \(url) is not valid" }
        }
        return "transport error calling \(hostPart(of: url)): \(text)"
    }

    /// The error came before any byte of the request could reach the participant: the connection was refused or
    /// could not be made (no route, no such host, a TLS handshake that failed), or the URL was unusable. Anything
    /// else (a reset, a close, a broken pipe) may have come after the participant read and applied the request.
    static func neverSent(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let error = error as? HTTPClientError {
            return error == .connectTimeout || error == .invalidURL || error == .emptyHost || error == .emptyScheme
        }
        let text = String(describing: error)
        return text.contains("connectionRefused") || text.contains("Connection refused")
    }

    static func hostPart(of url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return url }
        return components.port.map { "\(host):\($0)" } ?? host
    }

    /// `Retry-After` as delay-seconds or an HTTP date.
    static func parseRetryAfter(_ value: String) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return Duration(secondsValue: max(0, date.timeIntervalSinceNow))
    }
}

/// The HTTP clients an engine sends attempts with: one per 512 connections.
///
/// AsyncHTTPClient's connection pool looks through its connections on each request and release, which costs
/// more than the request itself once a pool holds thousands (a profile of 10,000 attempts held in flight showed
/// it as the top symbol). Several smaller pools keep each look short.
public final class StepHTTPClients: Sendable {
    public static let connectionsPerClient = 512
    public let clients: [HTTPClient]

    /// - Parameter concurrency: the most attempts in flight at once; there are enough connections for all of them.
    public init(concurrency: Int) {
        let count = max(1, (concurrency + Self.connectionsPerClient - 1) / Self.connectionsPerClient)
        let each = (concurrency + count - 1) / count
        clients = (0..<count).map { _ in HTTPClient.makeForSteps(connectionsPerHost: each) }
    }

    public func shutdown() async throws {
        for client in clients { try await client.shutdown() }
    }
}

/// The attempt's whole exchange, body included, did not finish within its timeout.
struct AttemptDeadlineExceeded: Error {}

final class StepClientCounter: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

extension HTTPClient {
    /// A client configured for saga steps: no redirects (a 3xx is an answer, not a detour), pooled connections.
    /// - Parameter connectionsPerHost: connections kept open to one participant; match the engine's concurrency so
    ///   attempts never queue for a connection.
    public static func makeForSteps(connectionsPerHost: Int = 64) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout.connect = .seconds(10)
        // A refused connection is an answer (the participant is down): fail the attempt at once and let the step's
        // retry policy decide, rather than have the client retry connecting until the attempt's deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(connectionsPerHost, 8)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}

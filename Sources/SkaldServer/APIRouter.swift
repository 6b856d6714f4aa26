import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Synchronization
import SkaldAPI
import SkaldCore
import SkaldEngine

/// Settings of the HTTP API.
public struct APIConfiguration: Sendable {
    /// When set, every `/v1` call must send `Authorization: Bearer <token>`.
    public var token: String?
    /// The largest request body accepted.
    public var maxBodyBytes: Int
    /// The longest a long-poll for events may wait.
    public var maxWait: Duration
    /// Which environment variables a definition registered through the API may read; one that reads any
    /// other is refused (422) when it is registered.
    public var environmentPolicy: EnvironmentPolicy
    /// The most long polls waiting at once; past it a poll is answered `429` with `Retry-After`.
    public var maxLongPolls: Int
    /// The largest run input, as JSON text.
    public var maxInputBytes: Int
    /// `GET /metrics`, when set: the Prometheus text the closure renders.
    public var metrics: MetricsEndpoint?
    /// The `Host` values answered (DNS rebinding defence); by default those of a server on 127.0.0.1.
    public var hosts: HostPolicy

    public static let defaultMaxLongPolls = 1_000
    public static let defaultMaxInputBytes = RunLimits.maxInputBytes

    public init(
        token: String? = nil, maxBodyBytes: Int = 1 << 20, maxWait: Duration = .seconds(30),
        environmentPolicy: EnvironmentPolicy = .allButReserved, maxLongPolls: Int = defaultMaxLongPolls,
        maxInputBytes: Int = defaultMaxInputBytes
    ) {
        self.token = token
        self.maxBodyBytes = maxBodyBytes
        self.maxWait = maxWait
        self.environmentPolicy = environmentPolicy
        self.maxLongPolls = maxLongPolls
        self.maxInputBytes = maxInputBytes
        self.hosts = .loopback
    }
}

/// `GET /metrics`: Prometheus's text format, rendered when scraped.
public struct MetricsEndpoint: Sendable {
    /// Served without the token (for a Prometheus that cannot send one); otherwise it needs it, like `/v1`.
    public var isPublic: Bool
    public var render: @Sendable () async -> String

    public init(isPublic: Bool, render: @escaping @Sendable () async -> String) {
        self.isPublic = isPublic
        self.render = render
    }
}

/// Limits on the connections themselves, for a server that any client on the network may reach.
public enum APIServerLimits {
    /// A request's head may have at most this many bytes of header fields, in at most `maxHeaderCount` fields;
    /// past either the connection is closed.
    public static let maxHeaderBytes = 32 * 1024
    public static let maxHeaderCount = 100
    public static let defaultReadTimeout: Duration = .seconds(30)

    /// The HTTP/1.1 server: a client that stops sending the head or body of a request (or keeps an idle
    /// connection open) for `readTimeout` is disconnected; a request that is fully read and waiting for its
    /// answer (a long poll) is not. With `connections`, a connection past its maximum is answered 503 and closed.
    public static func http1(readTimeout: Duration = defaultReadTimeout, connections: ConnectionLimit? = nil) -> HTTPServerBuilder {
        .http1(
            configuration: .init(
                additionalChannelHandlers: connections.map { [$0.handler()] } ?? [],
                idleTimeout: .nanoseconds(Int64(readTimeout.milliseconds * 1_000_000)),
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: maxHeaderBytes, maxHeaderListSize: maxHeaderBytes, maxHeaderFieldCount: maxHeaderCount)))
    }
}

/// Builds the API's router: `/health` and everything under `/v1`.
public func buildRouter(engine: Engine, store: any SagaStore, configuration: APIConfiguration = APIConfiguration())
    -> Router<BasicRequestContext>
{
    let api = API(engine: engine, store: store, configuration: configuration)
    let router = Router(context: BasicRequestContext.self)
    let token = configuration.token.flatMap { $0.isEmpty ? nil : $0 }
    let table = configuration.metrics.map { RouteTable.withMetrics(isPublic: $0.isPublic) } ?? .api
    router.add(middleware: SecurityHeadersMiddleware())
    router.add(middleware: ErrorMiddleware())
    // Before anything reads the path: one spelling per route, so no other spelling can slip past a check on it.
    router.add(middleware: CanonicalPathMiddleware())
    router.add(middleware: HostMiddleware(policy: configuration.hosts))
    // The token before the route contract, so that a caller without it learns nothing about routes, methods or parameters.
    if let token { router.add(middleware: AccessMiddleware(table: table, token: token)) }
    router.add(middleware: RouteContractMiddleware(table: table))
    // Each endpoint registers its handler on the group its access says; a guarded handler checks the token itself
    // too, whatever path reached it, and a /v1 POST must send JSON.
    let open = router.group()
    let guarded = router.group().add(middleware: RouteTokenMiddleware(token: token))
    let guardedJSON = router.group().add(middleware: RouteTokenMiddleware(token: token)).add(middleware: JSONBodyMiddleware())
    let handlers = api.handlers()
    for endpoint in table.endpoints {
        guard let handler = handlers[endpoint.operationID] else {
            assertionFailure("\(endpoint) has no handler")
            continue
        }
        let group = endpoint.access == .public ? open : endpoint.path.hasPrefix("/v1/") ? guardedJSON : guarded
        group.on(RouterPath(endpoint.path), method: endpoint.method) { request, context in try await handler(request, context) }
    }
    return router
}

/// What answers one endpoint.
typealias EndpointHandler = @Sendable (Request, BasicRequestContext) async throws -> Response

struct API: Sendable {
    /// Each endpoint's handler, by operation id (`Endpoint.operationID`): a new route is an entry in `Endpoint.api`,
    /// one here, and its function.
    func handlers() -> [String: EndpointHandler] {
        let api = self
        @Sendable func id(_ context: BasicRequestContext) throws -> String { try context.parameters.require("id") }
        var handlers: [String: EndpointHandler] = [
            "console": { _, _ in
                // A page that reads the API (its calls carry the token; the page itself holds nothing).
                Response(
                    status: .ok,
                    headers: [
                        .contentType: "text/html; charset=utf-8", .contentSecurityPolicy: ConsolePage.contentSecurityPolicy,
                        .cacheControl: "no-cache",
                    ],
                    body: .init(byteBuffer: ByteBuffer(string: ConsolePage.html)))
            },
            "health": { _, context in try await api.health(logger: context.logger) },
            "healthLive": { _, _ in .json(ProbeView(status: "ok")) },
            "healthReady": { _, context in await api.ready(logger: context.logger) },
            "getOpenAPI": { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
            },
            "listDefinitions": { _, _ in try await api.listDefinitions() },
            "registerDefinition": { request, _ in try await api.registerDefinition(request) },
            "getDefinition": { request, context in try await api.getDefinition(request, context) },
            "startRun": { request, _ in try await api.startRun(request) },
            "listRuns": { request, _ in try await api.listRuns(request) },
            "getRun": { _, context in try await api.getRun(try id(context)) },
            "getRunEvents": { request, context in try await api.events(request, runID: try id(context)) },
            "cancelRun": { request, context in try await api.cancel(request, runID: try id(context)) },
            "retryRun": { request, context in try await api.retry(request, runID: try id(context)) },
            "resolveRun": { request, context in try await api.resolve(request, runID: try id(context)) },
            "abandonRun": { request, context in try await api.abandon(request, runID: try id(context)) },
            "revertRun": { request, context in try await api.revert(request, runID: try id(context)) },
            "postCallback": { request, context in try await api.callback(request, token: try context.parameters.require("token")) },
            "approveStep": { request, context in
                try await api.decide(request, runID: try id(context), step: try context.parameters.require("step"), approve: true)
            },
            "rejectStep": { request, context in
                try await api.decide(request, runID: try id(context), step: try context.parameters.require("step"), approve: false)
            },
            "countRuns": { _, _ in try await api.counts() },
            "listParticipants": { _, _ in api.participants() },
        ]
        if let metrics = configuration.metrics {
            handlers["metrics"] = { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: await metrics.render())))
            }
        }
        return handlers
    }

    let engine: Engine
    let store: any SagaStore
    let configuration: APIConfiguration
    /// Each saga's graph, worked out once per definition rather than for every run shown.
    let graphs = GraphCache()
    /// Long polls waiting now.
    let longPolls = LongPollCounter()

    /// Public (no token), so it says whether the database works and since when it fails, never the database's
    /// own error text; that goes to the log.
    func health(logger: Logger) async throws -> Response {
        if let trouble = engine.storeTrouble {
            return .json(
                HealthView(
                    status: "degraded", database: "failing",
                    message:
                        "storing runs' progress has failed since \(trouble.since.formatted(.iso8601)) (\(trouble.failures) failure\(trouble.failures == 1 ? "" : "s")); affected runs send nothing new and carry on once the database can be written again; the server log says why"
                ), status: .serviceUnavailable)
        }
        do {
            _ = try await store.listRuns(RunQuery(limit: 1))
            let warnings = engine.sagasThisNodeCannotRun.map(\.message) + (engine.clockWarning.map { [$0] } ?? [])
            return .json(HealthView(status: "ok", database: "ok", warnings: warnings.isEmpty ? nil : warnings))
        } catch {
            logger.error("health check: the database cannot be read", metadata: ["error": "\(error)"])
            return .json(
                HealthView(status: "unavailable", database: "failing", message: "the database cannot be read; the server log says why"),
                status: .serviceUnavailable)
        }
    }

    /// Public, like `/health`: 200 while the node should be given work (it serves, is not draining, can read and
    /// write its database and, on a shared one, holds its lease); else 503 with the reasons.
    func ready(logger: Logger) async -> Response {
        var reasons = engine.notReadyBecause
        do {
            _ = try await store.listRuns(RunQuery(limit: 1))
        } catch {
            logger.error("readiness check: the database cannot be read", metadata: ["error": "\(error)"])
            reasons.append("the database cannot be read; the server log says why")
        }
        return reasons.isEmpty
            ? .json(ProbeView(status: "ready")) : .json(ProbeView(status: "not_ready", reasons: reasons), status: .serviceUnavailable)
    }

    // MARK: - Runs

    func startRun(_ request: Request) async throws -> Response {
        let body = try await decode(StartRunRequest.self, of: request)
        let saga = body.saga
        if saga.isEmpty { throw APIError.invalid(StartRunRequest.required("saga")) }
        if let version = body.version, version < 1 { throw APIError.invalid("\"version\" must be a whole number of at least 1") }
        let version = body.version
        if let key = body.idempotencyKey, key.isEmpty || key.count > RunLimits.maxIdempotencyKeyLength {
            throw APIError.invalid("\"idempotencyKey\" must be a string of 1 to \(RunLimits.maxIdempotencyKeyLength) characters")
        }
        let idempotencyKey = body.idempotencyKey
        let input = body.input ?? .object([:])
        let inputBytes = input.jsonText.utf8.count
        if inputBytes > configuration.maxInputBytes {
            throw APIError(
                .contentTooLarge, code: "too_large",
                message: "the input is \(inputBytes) bytes as JSON, over the limit of \(configuration.maxInputBytes); pass large data by reference (an id or a URL the participants can read)")
        }
        let started: StartedRun
        do {
            // The caller's W3C trace context, if it sent a valid one: the run continues that trace.
            let trace = RunTrace.continuing(
                traceparent: request.headers[HTTPField.Name("traceparent")!], tracestate: request.headers[HTTPField.Name("tracestate")!])
            started = try await engine.start(saga: saga, version: version, input: input, idempotencyKey: idempotencyKey, trace: trace)
        } catch let error as EngineError {
            switch error.code {
            case .notFound: throw APIError.notFound(error.message)
            case .conflict: throw APIError(.conflict, code: "idempotency_key_reused", message: error.message)
            case .definitionUnrunnable: throw APIError(.internalServerError, code: "unrunnable_definition", message: error.message)
            default: throw error
            }
        } catch let error as InputError {
            // A variable the server lacks is the server's problem, not the input's: say so, so nobody exports it
            // in their own shell and tries again.
            let what = error.isOnlyEnvironment
                ? "this server cannot run saga \(saga) as it is configured: its environment lacks \(error.missingEnvironment.joined(separator: ", "))"
                : "the input does not fit the saga \(saga)"
            throw APIError.invalid(
                "\(what): \(error.problems.joined(separator: "; "))",
                details: ["problems": .array(error.problems.map(JSONValue.string))])
        }
        // Answered with the run as it was stored (not read back).
        var found = started.run
        if found == nil { found = try await store.run(id: started.runID) }
        guard let run = found else {
            throw APIError.notFound("run \(started.runID) vanished")
        }
        var out = Representation.run(run, input: engine.shownInput(of: run), attempts: [], graph: engine.saga(of: run).map(graphs.graph))
        out.created = started.isNew
        var response = Response.json(out, status: started.isNew ? .created : .ok)
        response.headers[.location] = "/v1/runs/\(started.runID)"
        return response
    }

    func listRuns(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        var query = RunQuery()
        if let text = parameters.get("status") {
            guard let status = RunStatus(rawValue: text) else {
                throw APIError.invalid("status \"\(text)\" is not a run status; use one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            query.status = status
        }
        query.saga = parameters.get("saga")
        if let text = parameters.get("limit") {
            guard let limit = wholeNumber(text), (1...500).contains(limit) else { throw APIError.invalid("limit must be a whole number from 1 to 500") }
            query.limit = limit
        }
        query.cursor = parameters.get("cursor")
        // `since=2h`: started in the last two hours; `until=30m`: started more than 30 minutes ago.
        let now = Date()
        func ago(_ name: String) throws -> Date?? {
            guard let text = parameters.get(name) else { return nil }
            switch DurationText.check(text) {
            case .success(let duration): return .some(now.addingTimeInterval(-duration.seconds))
            case .failure(.tooLong): return .some(nil)  // further back than anything stored: no bound
            case .failure(.notADuration): throw APIError.invalid("\(name) must be a duration such as 2h or 30m (how long ago), not \"\(text)\"")
            }
        }
        if let since = try ago("since") { query.createdAfter = since }
        if let until = try ago("until") { query.createdBefore = until ?? .distantPast }
        if let key = parameters.get("idempotencyKey") {
            guard !key.isEmpty, key.count <= RunLimits.maxIdempotencyKeyLength else {
                throw APIError.invalid("idempotencyKey must be 1 to \(RunLimits.maxIdempotencyKeyLength) characters")
            }
            query.idempotencyKey = key
        }
        if let text = parameters.get("waiting") {
            guard text == WaitKind.approval.rawValue else {
                throw APIError.invalid("waiting must be \"approval\" (the runs waiting for a person's decision, oldest first), not \"\(text)\"")
            }
            query.waiting = .approval
        }
        let page = try await store.listRuns(query)
        return .json(RunsPage(runs: page.runs.map(Representation.summary), nextCursor: page.nextCursor))
    }

    func getRun(_ runID: String) async throws -> Response {
        .json(try await runRepresentation(runID))
    }

    func runRepresentation(_ runID: String) async throws -> RunView {
        guard let run = try await store.run(id: runID) else { throw Self.unknownRun(runID) }
        let input = engine.shownInput(of: run)
        let saga = engine.saga(of: run)
        var shown = Representation.run(
            run, input: input, attempts: try await store.attempts(runID: runID), graph: saga.map(graphs.graph),
            waits: engine.participantWaits(runID: runID), output: saga?.output(of: run.state, input: input))
        if !run.state.status.isTerminal, let unrunnable = engine.unrunnable(run) {
            shown.unrunnable = UnrunnableView(message: unrunnable.description, problems: unrunnable.problems, canBeAbandoned: unrunnable.canBeAbandoned)
        }
        // A child run: its key names the step that started it, and that step names it back.
        if let parent = run.idempotencyKey.flatMap(ChildSagaDefinition.parent(ofKey:)),
            let started = try await store.run(id: parent.runID),
            started.state.steps.contains(where: { $0.name == parent.step && $0.wait?.kind == .child && $0.wait?.token == run.id })
        {
            shown.parent = ParentView(run: parent.runID, step: parent.step)
        }
        return shown
    }

    func events(_ request: Request, runID: String) async throws -> Response {
        let parameters = request.uri.queryParameters
        var after: Int64 = 0
        if let text = parameters.get("after") {
            guard let value = wholeNumber(text).map(Int64.init), value >= 0 else {
                throw APIError.invalid("after must be a whole number of at least 0 (the lastSequence of the previous page), not \"\(text)\"")
            }
            after = value
        }
        var wait: Duration = .zero
        if let text = parameters.get("wait") {
            switch DurationText.check(text) {
            case .success(let duration):
                wait = min(duration, configuration.maxWait)
            case .failure(.tooLong):
                // Longer than anything is still a valid wish to wait: the longest wait is what it gets.
                wait = configuration.maxWait
            case .failure(.notADuration):
                // Whole seconds, however many digits: more than the longest wait is the longest wait.
                guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    throw APIError.invalid("wait must be a duration such as 30s or 500ms (or whole seconds), not \"\(text)\"")
                }
                let seconds = Int(text) ?? Int.max
                wait = seconds >= Int(configuration.maxWait.seconds) ? configuration.maxWait : .seconds(seconds)
            }
        }
        // A poll that waits holds a connection: past the limit of waiting polls, the caller is told to come back.
        let (longPolls, limit) = (longPolls, configuration.maxLongPolls)
        let page: RunEvents
        do {
            page = try await engine.events(
                runID: runID, after: after, wait: wait,
                admission: LongPollAdmission(enter: { longPolls.enter(limit: limit) }, leave: { longPolls.leave() }))
        } catch let error as EngineError where error.code == .notFound {
            throw Self.unknownRun(runID)
        } catch is LongPollRefused {
            var response = APIError(
                .tooManyRequests, code: "too_many_long_polls",
                message: "\(limit) long polls are already waiting on this server; try again in a second").response
            response.headers[.retryAfter] = "1"
            return response
        }
        return .json(EventsPage(runId: runID, status: page.status.rawValue, events: page.events.map(Representation.event), lastSequence: page.lastSequence))
    }

    /// Reads a request body as one of the API's request types: unknown fields, a missing required field and a value
    /// of the wrong type are each refused with 422, naming the field.
    func decode<Body: APIObject>(_ type: Body.Type, of request: Request) async throws -> Body {
        let members = try await jsonObject(of: request, allowed: Body.fields)
        do {
            return try JSONValueCoding.decode(Body.self, from: .object(members))
        } catch let error as DecodingError {
            if case .keyNotFound(let key, let context) = error, context.codingPath.isEmpty { throw APIError.invalid(Body.required(key.stringValue)) }
            if case .valueNotFound(_, let context) = error, context.codingPath.count == 1 {
                throw APIError.invalid(Body.required(context.codingPath[0].stringValue))
            }
            throw APIError.invalid(JSONValueCoding.describe(error))
        }
    }

    func operate(_ runID: String, _ action: () async throws -> RunState) async throws -> Response {
        do {
            _ = try await action()
        } catch let error as EngineError {
            switch error.code {
            case .notFound: throw Self.unknownRun(runID)
            case .conflict, .definitionUnrunnable: throw APIError.conflict(error.message)
            case .unavailable: throw APIError(.serviceUnavailable, code: "unavailable", message: error.message)
            case .accepted:
                // Taken by the node that drives the run, which carries it out: the run as it is now, and what to watch.
                var run = try await runRepresentation(runID)
                run.accepted = error.message
                var response = Response.json(run, status: .accepted)
                response.headers[.location] = "/v1/runs/\(runID)/events"
                return response
            }
        }
        return try await getRun(runID)
    }

    /// How often a long poll reads the database for the events of a run another node drives.
    static func unknownRun(_ runID: String) -> APIError {
        APIError.notFound("no run with id \(runID); GET /v1/runs lists them")
    }

    // MARK: - Bodies

    func body(of request: Request) async throws -> [UInt8] {
        do {
            let buffer = try await request.body.collect(upTo: configuration.maxBodyBytes)
            return Array(buffer.readableBytesView)
        } catch {
            throw APIError(.contentTooLarge, code: "too_large", message: "the body is larger than \(configuration.maxBodyBytes) bytes")
        }
    }

    /// Parses a JSON object body, refusing unknown fields.
    func jsonObject(of request: Request, allowed: [String]) async throws -> [String: JSONValue] {
        let bytes = try await body(of: request)
        if bytes.isEmpty || bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw APIError.malformed("the body is empty; send a JSON object")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes).value
        } catch {
            throw APIError.malformed("the body is not valid JSON: \(error.location): \(error.message)")
        }
        guard case .object(let members) = value else {
            throw APIError.invalid("the body must be a JSON object, not \(value.typeName)")
        }
        let unknown = members.keys.filter { !allowed.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw APIError.invalid(
                "unknown field\(unknown.count == 1 ? "" : "s") \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")); the fields allowed here are \(allowed.isEmpty ? "none" : allowed.joined(separator: ", "))")
        }
        return members
    }
}

/// Counts the long polls waiting, so that they cannot pile up without bound.
final class LongPollCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// Takes a place if fewer than `limit` are taken.
    func enter(limit: Int) -> Bool {
        if count.add(1, ordering: .relaxed).newValue <= limit { return true }
        count.subtract(1, ordering: .relaxed)
        return false
    }

    func leave() { count.subtract(1, ordering: .relaxed) }
}

/// Digits only (no sign, no spaces), as the OpenAPI document's integers; nil past `Int.max`.
func wholeNumber(_ text: String) -> Int? {
    guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
    return Int(text)
}

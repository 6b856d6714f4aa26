import HTTPTypes

/// One operation of the HTTP API, as `docs/openapi.json` declares it. `Endpoint.api` is the one list of them: the
/// router registers a handler for each (by operation id), the 405 and 422 answers come from it, and a test checks
/// the document against it: every path, method, operation id and query parameter, both ways.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// Whether an endpoint needs the token (when the server has one). A path no endpoint has needs it too.
    public enum Access: Sendable, Hashable {
        /// Anyone: the console's page (which holds nothing) and `/health`.
        case `public`
        case token
    }

    public var method: HTTPRequest.Method
    /// With `:name` for a path parameter (`/v1/runs/:id`).
    public var path: String
    /// The document's `operationId`, and the key of the endpoint's handler.
    public var operationID: String
    /// The query parameters it takes; any other is answered 422.
    public var query: [String]
    public var access: Access

    public init(_ method: HTTPRequest.Method, _ path: String, _ operationID: String, query: [String] = [], access: Access = .token) {
        self.method = method
        self.path = path
        self.operationID = operationID
        self.query = query
        self.access = access
    }

    /// The path as OpenAPI writes it (`/v1/runs/{id}`).
    public var documentedPath: String {
        "/" + path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
    }

    public var description: String { "\(method) \(documentedPath) (\(operationID))" }

    public static let api: [Endpoint] = [
        Endpoint(.get, "/", "console", access: .public),
        Endpoint(.get, "/health", "health", access: .public),
        Endpoint(.get, "/health/live", "healthLive", access: .public),
        Endpoint(.get, "/health/ready", "healthReady", access: .public),
        Endpoint(.get, "/v1/openapi.json", "getOpenAPI"),
        Endpoint(.get, "/v1/definitions", "listDefinitions"),
        Endpoint(.post, "/v1/definitions", "registerDefinition"),
        Endpoint(.get, "/v1/definitions/:name", "getDefinition", query: ["version"]),
        Endpoint(.post, "/v1/runs", "startRun"),
        Endpoint(.get, "/v1/runs", "listRuns", query: ["status", "saga", "limit", "cursor", "since", "until", "idempotencyKey", "waiting"]),
        Endpoint(.get, "/v1/runs/:id", "getRun"),
        Endpoint(.get, "/v1/runs/:id/events", "getRunEvents", query: ["after", "wait"]),
        Endpoint(.post, "/v1/runs/:id/cancel", "cancelRun"),
        Endpoint(.post, "/v1/runs/:id/retry", "retryRun"),
        Endpoint(.post, "/v1/runs/:id/resolve", "resolveRun"),
        Endpoint(.post, "/v1/runs/:id/abandon", "abandonRun"),
        Endpoint(.post, "/v1/runs/:id/revert", "revertRun"),
        Endpoint(.post, "/v1/runs/:id/steps/:step/approve", "approveStep"),
        Endpoint(.post, "/v1/runs/:id/steps/:step/reject", "rejectStep"),
        Endpoint(.post, "/v1/callbacks/:token", "postCallback", access: .public),
        Endpoint(.get, "/v1/counts", "countRuns"),
        Endpoint(.get, "/v1/participants", "listParticipants"),
    ]

    /// `GET /metrics`, guarded by the token unless it is public.
    public static func metrics(isPublic: Bool) -> Endpoint {
        Endpoint(.get, "/metrics", "metrics", access: isPublic ? .public : .token)
    }
}

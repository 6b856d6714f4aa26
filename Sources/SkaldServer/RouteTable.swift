import Hummingbird

/// The API's routes as the OpenAPI document declares them: paths, methods and query parameters.
/// The router answers what the document does not declare the way the document's readers expect:
/// `405` with `Allow` for a method a path does not have, `422` for a query parameter it does not take.
struct RouteTable: Sendable {
    /// Whether a route needs the token (when the server has one). A path no route matches needs it too.
    enum Access: Sendable, Equatable {
        /// Anyone: the console's page (which holds nothing) and `/health`.
        case `public`
        case token
    }

    struct Route: Sendable {
        /// Segments; `:name` matches any one segment.
        var segments: [Substring]
        var methods: [HTTPRequest.Method]
        var query: Set<String>
        /// Who may call it when the server has a token.
        var access: Access

        init(_ path: String, _ methods: [HTTPRequest.Method], query: Set<String> = [], access: Access = .token) {
            self.segments = path.split(separator: "/")
            self.methods = methods
            self.query = query
            self.access = access
        }

        func matches(_ path: [Substring]) -> Bool {
            path.count == segments.count && zip(segments, path).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
        }
    }

    static let api = RouteTable(routes: [
        Route("/", [.get], access: .public),
        Route("/health", [.get], access: .public),
        Route("/v1/openapi.json", [.get]),
        Route("/v1/definitions", [.get, .post]),
        Route("/v1/definitions/:name", [.get], query: ["version"]),
        Route("/v1/runs", [.get, .post], query: ["status", "saga", "limit", "cursor", "since", "until", "idempotencyKey"]),
        Route("/v1/runs/:id", [.get]),
        Route("/v1/counts", [.get]),
        Route("/v1/participants", [.get]),
        Route("/v1/runs/:id/events", [.get], query: ["after", "wait"]),
        Route("/v1/runs/:id/cancel", [.post]),
        Route("/v1/runs/:id/retry", [.post]),
        Route("/v1/runs/:id/resolve", [.post]),
        Route("/v1/runs/:id/abandon", [.post]),
    ])

    /// With `GET /metrics`, guarded by the token unless it is public.
    static func withMetrics(isPublic: Bool) -> RouteTable {
        RouteTable(routes: api.routes + [Route("/metrics", [.get], access: isPublic ? .public : .token)])
    }

    var routes: [Route]

    func route(for path: String) -> Route? {
        let segments = path.split(separator: "/")
        // No two routes match the same path (they differ in length or in a literal segment), so the first is the one.
        return routes.first { route in route.matches(segments) }
    }
}

/// Answers requests the route table does not allow before they reach a handler.
struct RouteContractMiddleware<Context: RequestContext>: RouterMiddleware {
    let table: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let route = table.route(for: request.uri.path) else { return try await next(request, context) }
        guard route.methods.contains(request.method) else {
            let allowed = route.methods.map(\.rawValue).joined(separator: ", ")
            var response = APIError(
                .methodNotAllowed, code: "method_not_allowed",
                message: "\(request.uri.path) does not take \(request.method); it takes \(allowed) (see /v1/openapi.json)"
            ).response
            response.headers[.allow] = allowed
            return response
        }
        let unknown = Set(request.uri.queryParameters.map { String($0.key) }).subtracting(route.query).sorted()
        if !unknown.isEmpty {
            let takes = route.query.isEmpty ? "takes no query parameters" : "takes only \(route.query.sorted().joined(separator: ", "))"
            return APIError.invalid(
                "unknown query parameter\(unknown.count == 1 ? "" : "s") \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")); \(request.uri.path) \(takes)"
            ).response
        }
        return try await next(request, context)
    }
}

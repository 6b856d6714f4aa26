import Hummingbird
import SkaldAPI

/// The endpoints by path, for answering what they do not allow.
struct RouteTable: Sendable {
    typealias Access = Endpoint.Access

    struct Route: Sendable {
        /// Segments; `:name` matches any one segment.
        var segments: [Substring]
        /// The endpoints of this path, one per method.
        var endpoints: [Endpoint]
        /// Who may call it when the server has a token.
        var access: Access { endpoints.contains { $0.access == .token } ? .token : .public }
        var methods: [HTTPRequest.Method] { endpoints.map(\.method).sorted { $0.rawValue < $1.rawValue } }

        func matches(_ path: [Substring]) -> Bool {
            path.count == segments.count && zip(segments, path).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
        }
    }

    let endpoints: [Endpoint]
    let routes: [Route]

    init(endpoints: [Endpoint]) {
        self.endpoints = endpoints
        var routes: [Route] = []
        for endpoint in endpoints {
            let segments = endpoint.path.split(separator: "/")
            if let index = routes.firstIndex(where: { $0.segments == segments }) {
                routes[index].endpoints.append(endpoint)
            } else {
                routes.append(Route(segments: segments, endpoints: [endpoint]))
            }
        }
        self.routes = routes
    }

    static let api = RouteTable(endpoints: Endpoint.api)

    /// With `GET /metrics`, guarded by the token unless it is public.
    static func withMetrics(isPublic: Bool) -> RouteTable {
        RouteTable(endpoints: Endpoint.api + [Endpoint.metrics(isPublic: isPublic)])
    }

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
        let query = Set(route.endpoints.first { $0.method == request.method }?.query ?? [])
        let unknown = Set(request.uri.queryParameters.map { String($0.key) }).subtracting(query).sorted()
        if !unknown.isEmpty {
            let takes = query.isEmpty ? "takes no query parameters" : "takes only \(query.sorted().joined(separator: ", "))"
            return APIError.invalid(
                "unknown query parameter\(unknown.count == 1 ? "" : "s") \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")); \(request.method) \(request.uri.path) \(takes)"
            ).response
        }
        return try await next(request, context)
    }
}

import Foundation
import HTTPTypes
import Hummingbird

/// Refuses a path that is not written the one way the route table spells it: an empty segment (`//v1/runs`,
/// `/v1/runs/`) or a dot segment (`/./v1`, `/x/../v1`, also percent-encoded). (The router reads segments as they
/// are sent, without decoding, so `%2F` inside one is that segment's text, not a separator.) The router would
/// otherwise read `//v1/runs` as `/v1/runs`, so every check made on the path string would have to guess how the
/// router reads it; refused here, there is one spelling of each route to guard.
struct CanonicalPathMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if let problem = Self.problem(in: path) {
            return APIError(.badRequest, code: "bad_path", message: "the path \(path) \(problem); see /v1/openapi.json for the routes").response
        }
        return try await next(request, context)
    }

    /// Why the path is not in its one spelling, or nil when it is.
    static func problem(in path: String) -> String? {
        guard path.hasPrefix("/") else { return "does not start with /" }
        if path == "/" { return nil }
        for segment in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty { return "has an empty segment (a doubled or trailing /); write each / once" }
            let decoded = segment.replacingOccurrences(of: "%2e", with: ".", options: .caseInsensitive)
            if decoded == "." || decoded == ".." { return "has a . or .. segment; write the path without it" }
        }
        return nil
    }
}

/// Answers a request for a route that needs the token, without it, with `401`. Which routes need it is a property of
/// each route in the route table; a path no route matches needs it too, so that nothing is learnt about the routes
/// without it. The guarded routes' handlers check it again themselves (`RouteTokenMiddleware`).
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let table: RouteTable
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if table.route(for: request.uri.path)?.access == .public || TokenCheck.passes(request, token: token) {
            return try await next(request, context)
        }
        return APIError.unauthorized.response
    }
}

/// The token check on a guarded route's own handler, whatever path reached it.
struct RouteTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token, !TokenCheck.passes(request, token: token) else { return try await next(request, context) }
        return APIError.unauthorized.response
    }
}

/// `Authorization: Bearer <token>`, compared in constant time.
enum TokenCheck {
    static func passes(_ request: Request, token: String) -> Bool {
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        return header.hasPrefix(prefix) && constantTimeEquals(Array(header.utf8.dropFirst(prefix.utf8.count)), Array(token.utf8))
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}

/// Refuses a request whose `Host` is not a name this server is reached by, so that a page whose name was rebound to
/// 127.0.0.1 (DNS rebinding), and is therefore same-origin with the server in the browser's eyes, cannot call it.
struct HostMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: HostPolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let authority = request.head.authority
        guard policy.allows(authority: authority) else {
            return APIError(
                .misdirectedRequest, code: "unknown_host",
                message: "this server does not answer to the host \(authority ?? ""); reach it by an address or a name it allows (skald serve --allowed-host NAME adds one)"
            ).response
        }
        return try await next(request, context)
    }
}

/// Headers every answer carries, errors included.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
}

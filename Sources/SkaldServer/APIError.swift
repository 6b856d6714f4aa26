import Hummingbird
import SkaldCore

/// An API error: `{ "error": { "code": …, "message": … } }` with the matching HTTP status.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// Extra detail, such as every validation problem with its path.
    public var details: JSONValue?

    public init(_ status: HTTPResponse.Status, code: String, message: String, details: JSONValue? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    static func malformed(_ message: String) -> APIError { APIError(.badRequest, code: "malformed_json", message: message) }
    static func notFound(_ message: String) -> APIError { APIError(.notFound, code: "not_found", message: message) }
    static func conflict(_ message: String) -> APIError { APIError(.conflict, code: "conflict", message: message) }
    static func invalid(_ message: String, details: JSONValue? = nil) -> APIError {
        APIError(.unprocessableContent, code: "invalid", message: message, details: details)
    }
    static let unauthorized = APIError(
        .unauthorized, code: "unauthorized", message: "this server needs a bearer token: send Authorization: Bearer <token> (skald --token or SKALD_TOKEN)")

    var body: JSONValue {
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        if let details { error["details"] = details }
        return ["error": .object(error)]
    }

    var response: Response { Response.json(body, status: status) }
}

extension Response {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.prettyText + "\n")))
    }
}

/// Turns every thrown error into the API's error body, so no handler leaks a bare 500.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : error.status == .contentTooLarge ? "too_large" : "http_error"
            let message = error.status == .notFound
                ? "no such route: \(request.method) \(request.uri.path); see /v1/openapi.json"
                : (error.body ?? "\(error.status)")
            return APIError(error.status, code: code, message: message).response
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return APIError(.internalServerError, code: "internal", message: "\(error)").response
        }
    }
}

/// Requires `Authorization: Bearer <token>` on every route it guards, comparing in constant time.
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), Self.constantTimeEquals(Array(header.utf8.dropFirst(prefix.utf8.count)), Array(token.utf8)) else {
            return APIError.unauthorized.response
        }
        return try await next(request, context)
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}

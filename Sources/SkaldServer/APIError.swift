import Hummingbird
import SkaldAPI
import SkaldCore
import SkaldEngine

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

    var body: ErrorBody { ErrorBody(error: ErrorView(code: code, message: message, details: details)) }

    var response: Response { Response.json(body, status: status) }
}

extension Response {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.prettyText + "\n")))
    }

    /// One of the API's shapes (`SkaldAPI`), as JSON.
    static func json(_ value: some APIObject, status: HTTPResponse.Status = .ok) -> Response {
        json(value.json(), status: status)
    }
}

/// Turns every thrown error into the API's error body, so no handler leaks a bare 500.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as StoreUnavailable {
            context.logger.error("request failed: the database is unavailable", metadata: ["error": "\(error)"])
            return APIError(
                .serviceUnavailable, code: "unavailable",
                message: "the database cannot be written right now: \(error.reason); nothing was changed, try again once it can (GET /health)"
            ).response
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : error.status == .contentTooLarge ? "too_large" : "http_error"
            let message = error.status == .notFound
                ? "no such route: \(request.method) \(request.uri.path); see /v1/openapi.json"
                : (error.body ?? "\(error.status)")
            return APIError(error.status, code: code, message: message).response
        } catch {
            // The error itself may name files, SQL or the database's state: it goes to the log, not to the client.
            let reference = String(UInt32.random(in: 0...UInt32.max), radix: 16)
            context.logger.error("request failed", metadata: ["error": "\(error)", "reference": "\(reference)"])
            return APIError(
                .internalServerError, code: "internal",
                message: "the server could not complete \(request.method) \(request.uri.path); its log has the cause under reference \(reference)"
            ).response
        }
    }
}

/// Refuses a request body that is not declared as JSON (`415`), so that a cross-origin form post, which can only
/// send `text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data` without a preflight, cannot
/// register definitions, start runs or act on them. Applies to every POST, even one without a body.
struct JSONBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post else { return try await next(request, context) }
        let mediaType = (request.headers[.contentType] ?? "").split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        guard mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json")) else {
            return APIError(
                .unsupportedMediaType, code: "unsupported_media_type",
                message: mediaType.isEmpty
                    ? "a POST must send Content-Type: application/json (even with an empty body)"
                    : "the body is \(mediaType); send it as JSON with Content-Type: application/json"
            ).response
        }
        return try await next(request, context)
    }
}

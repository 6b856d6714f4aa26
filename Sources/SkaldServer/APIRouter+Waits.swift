import Foundation
import HTTPTypes
import Hummingbird
import SkaldAPI
import SkaldCore
import SkaldEngine

/// Participants' callbacks: the one route without the API token.
extension API {
    /// A participant's callback: stored in one transaction (a `200` means committed), then applied to its run.
    func callback(_ request: Request, token: String) async throws -> Response {
        var body = try await decode(CallbackRequest.self, of: request)
        // A field sent as null is a field left out.
        if body.output == .null { body.output = nil }
        let signal: CallbackSignal
        switch body.status {
        case "succeeded":
            if body.error != nil { throw APIError.invalid("error: a succeeded callback has no error; send it with \"status\": \"failed\"") }
            let output = body.output ?? .null
            if case let bytes = output.jsonText.utf8.count, bytes > configuration.maxInputBytes {
                throw APIError(
                    .contentTooLarge, code: "too_large",
                    message: "output is \(bytes) bytes as JSON, over the limit of \(configuration.maxInputBytes); send what later steps read")
            }
            signal = .succeeded(output: output)
        case "failed":
            guard let error = body.error, !error.isEmpty else {
                throw APIError.invalid("error: a failed callback says why, in \"error\" (a string); the run's history keeps it")
            }
            if body.output != nil { throw APIError.invalid("output: a failed callback has no output") }
            signal = .failed(error: error)
        case "heartbeat":
            if body.output != nil || body.error != nil { throw APIError.invalid("a heartbeat has no output and no error: send {\"status\": \"heartbeat\"}") }
            signal = .heartbeat
        default:
            throw APIError.invalid("status: \"\(body.status)\" is not a callback status; use succeeded, failed or heartbeat")
        }
        guard CallbackToken.isWellFormed(token) else { throw Self.unknownCallback }
        switch try await engine.receiveCallback(token: token, signal: signal) {
        case .stored: return .json(CallbackAnswer(result: "stored"))
        case .repeated: return .json(CallbackAnswer(result: "repeat"))
        case .unknown: throw Self.unknownCallback
        case .conflict(let why): throw APIError.conflict(why)
        case .gone(let why): throw APIError(.gone, code: "gone", message: why)
        }
    }

    static let unknownCallback = APIError(
        .notFound, code: "not_found", message: "no callback step has this token; post to the exact URL the step's request carried ({{callback.url}})")
}

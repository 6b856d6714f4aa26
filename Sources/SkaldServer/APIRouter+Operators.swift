import Foundation
import HTTPTypes
import Hummingbird
import SkaldAPI
import SkaldCore
import SkaldEngine

/// Operators' actions on a run: cancel, retry, resolve, abandon, and a person's decision on an approval.
extension API {
    func cancel(_ request: Request, runID: String) async throws -> Response {
        let body = try await decode(CancelRunRequest.self, of: request)
        let reason = body.reason ?? ""
        let who = body.by ?? ""
        return try await operate(runID) { try await engine.cancel(runID: runID, reason: reason, by: who) }
    }

    /// Retries a failed compensation (compensation_failed), or resumes a stuck run.
    func retry(_ request: Request, runID: String) async throws -> Response {
        let body = try await decode(RetryRunRequest.self, of: request)
        let step = body.step
        if step?.isEmpty == true { throw APIError.invalid("\"step\" must name a step; leave it out to retry every failed compensation") }
        let who = body.by ?? ""
        let note = body.note ?? ""
        return try await operate(runID) { try await engine.retry(runID: runID, step: step, note: note, by: who) }
    }

    /// Records that a step was done by hand: a failed compensation of a run in compensation_failed, or a failed
    /// step of a stuck run (with, optionally, the response later steps read).
    func resolve(_ request: Request, runID: String) async throws -> Response {
        let body = try await decode(ResolveRunRequest.self, of: request)
        let (step, note, who, response) = (body.step, body.note, body.by ?? "", body.response)
        if step.isEmpty { throw APIError.invalid(ResolveRunRequest.required("step")) }
        if note.isEmpty { throw APIError.invalid(ResolveRunRequest.required("note")) }
        if let response, case let bytes = response.jsonText.utf8.count, bytes > configuration.maxInputBytes {
            throw APIError(
                .contentTooLarge, code: "too_large",
                message: "the response is \(bytes) bytes as JSON, over the limit of \(configuration.maxInputBytes); record what later steps read, not the whole answer")
        }
        return try await operate(runID) { try await engine.resolve(runID: runID, step: step, note: note, by: who, response: response) }
    }

    /// Stops a run without compensating: the business settled it by hand.
    func abandon(_ request: Request, runID: String) async throws -> Response {
        let body = try await decode(AbandonRunRequest.self, of: request)
        let (note, who) = (body.note, body.by ?? "")
        if note.isEmpty { throw APIError.invalid(AbandonRunRequest.required("note")) }
        return try await operate(runID) { try await engine.abandon(runID: runID, note: note, by: who) }
    }

    /// Undoes a completed run: its compensations run, in reverse.
    func revert(_ request: Request, runID: String) async throws -> Response {
        let body = try await decode(RevertRunRequest.self, of: request)
        let (note, who) = (body.note, body.by ?? "")
        if note.isEmpty { throw APIError.invalid(RevertRunRequest.required("note")) }
        return try await operate(runID) { try await engine.revert(runID: runID, note: note, by: who) }
    }

    /// A person approves or rejects a step waiting for approval.
    func decide(_ request: Request, runID: String, step: String, approve: Bool) async throws -> Response {
        let body = try await decode(DecideStepRequest.self, of: request)
        return try await operate(runID) {
            try await engine.decide(runID: runID, step: step, approve: approve, note: body.note ?? "", by: body.by ?? "")
        }
    }
}

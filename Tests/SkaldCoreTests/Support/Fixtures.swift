import Foundation
import SkaldCore
import SkaldTestSupport

/// Builds definitions from JSON text for tests.
func saga(_ json: String) throws -> SagaDefinition {
    try DefinitionParser.parse(Array(json.utf8), file: "test.json")
}

/// The problems a definition text has (empty when it is valid).
func problems(_ json: String) -> [DefinitionProblem] {
    do {
        _ = try DefinitionParser.parse(Array(json.utf8), file: "test.json")
        return []
    } catch {
        return error.problems
    }
}

/// A three-step saga with compensations on the first two steps (and none on the third).
let threeSteps = """
    {
      "name": "order", "version": 1,
      "defaults": { "retry": { "maxAttempts": 3, "initialInterval": "1s", "backoffCoefficient": 2, "maxInterval": "10s", "jitter": "none" } },
      "steps": [
        { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" },
          "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a/{{steps.a.response.body.id}}", "retry": { "maxAttempts": 2 } } },
        { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b" },
          "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/b" } },
        { "name": "c", "request": { "method": "POST", "url": "http://127.0.0.1:1/c" } }
      ]
    }
    """

let t0 = Date(timeIntervalSince1970: 1_800_000_000)

extension StepResponse {
    static func ok(_ body: JSONValue = ["id": "x1"]) -> StepResponse { StepResponse(status: 200, body: body) }
}

extension AttemptOutcome {
    static let ok = AttemptOutcome.succeeded(.ok())
    static let unavailable = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 503", isRetryable: true))
    static let declined = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 402", isRetryable: false))
}

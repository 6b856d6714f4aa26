import SkaldCore

// The bodies the API takes. The server refuses a field a type does not list (`fields`), and the CLI sends these.

/// `POST /v1/runs`.
public struct StartRunRequest: APIObject {
    /// The name of a registered saga.
    public var saga: String
    /// Its newest version when left out.
    public var version: Int?
    public var input: JSONValue?
    /// A second start with the same key returns the first run instead of starting another.
    public var idempotencyKey: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case saga, version, input, idempotencyKey }
    public static let help = ["saga": "the name of a registered saga (GET /v1/definitions lists them)"]

    public init(saga: String, version: Int? = nil, input: JSONValue? = nil, idempotencyKey: String? = nil) {
        self.saga = saga
        self.version = version
        self.input = input
        self.idempotencyKey = idempotencyKey
    }
}

/// `POST /v1/runs/{id}/cancel`.
public struct CancelRunRequest: APIObject {
    public var reason: String?
    /// Who, for the history.
    public var by: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case reason, by }

    public init(reason: String? = nil, by: String? = nil) {
        self.reason = reason
        self.by = by
    }
}

/// `POST /v1/runs/{id}/retry`: retries failed compensations, or resumes a stuck run.
public struct RetryRunRequest: APIObject {
    /// The step whose failed compensation to retry; every failed one when left out.
    public var step: String?
    public var by: String?
    public var note: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case step, by, note }

    public init(step: String? = nil, by: String? = nil, note: String? = nil) {
        self.step = step
        self.by = by
        self.note = note
    }
}

/// `POST /v1/runs/{id}/resolve`: a step's work (stuck run) or its compensation (compensation_failed run) was done by hand.
public struct ResolveRunRequest: APIObject {
    public var step: String
    public var note: String
    public var by: String?
    /// On a stuck run: the response body later steps read from the step, as if its participant had answered 200.
    public var response: JSONValue?

    public enum CodingKeys: String, CodingKey, CaseIterable { case step, note, by, response }
    public static let help = [
        "step": "the step whose work (or compensation) was done by hand",
        "note": "say what was done by hand, for example \"refunded in the bank's console\"",
    ]

    public init(step: String, note: String, by: String? = nil, response: JSONValue? = nil) {
        self.step = step
        self.note = note
        self.by = by
        self.response = response
    }
}

/// `POST /v1/runs/{id}/abandon`: stops a run without compensating; the business settled it by hand.
public struct AbandonRunRequest: APIObject {
    public var note: String
    public var by: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case note, by }
    public static let help = ["note": "say how the business settled it, for example \"refunded by phone, ticket 4411\""]

    public init(note: String, by: String? = nil) {
        self.note = note
        self.by = by
    }
}

/// `POST /v1/runs/{id}/revert`: undoes a completed run (of a saga without a pivot): its compensations run, in reverse.
public struct RevertRunRequest: APIObject {
    public var note: String
    public var by: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case note, by }
    public static let help = ["note": "say why it is undone, for example \"order cancelled after delivery was booked\""]

    public init(note: String, by: String? = nil) {
        self.note = note
        self.by = by
    }
}

/// `POST /v1/runs/{id}/steps/{step}/approve` and `/reject`: a person's decision on a step waiting for approval.
public struct DecideStepRequest: APIObject {
    public var note: String?
    public var by: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case note, by }

    public init(note: String? = nil, by: String? = nil) {
        self.note = note
        self.by = by
    }
}

/// `POST /v1/callbacks/{token}`: a participant completes (or reports progress on) a callback step. No API token: the
/// URL's token is the authority, for that one attempt of that one step.
public struct CallbackRequest: APIObject {
    /// `succeeded`, `failed` or `heartbeat`.
    public var status: String
    /// With `succeeded`: what later steps read as `{{steps.NAME.callback.output…}}` (null when absent).
    @Nullable public var output: JSONValue?
    /// With `failed`: why, for the run's history.
    @Nullable public var error: String?

    public enum CodingKeys: String, CodingKey, CaseIterable { case status, output, error }

    public init(status: String, output: JSONValue? = nil, error: String? = nil) {
        self.status = status
        self.output = output
        self.error = error
    }
}

/// The answer to a callback that was stored: `stored` now, or `repeat` of one stored before.
public struct CallbackAnswer: APIObject {
    public var result: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case result }

    public init(result: String) { self.result = result }
}

/// What one attempt of a call came to, as the executor classified it.
public enum AttemptOutcome: Sendable, Hashable {
    case succeeded(StepResponse)
    case failed(AttemptFailure)

    public var isSuccess: Bool {
        if case .succeeded = self { return true }
        return false
    }
}

public struct AttemptFailure: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// The participant answered with a status that is not success.
        case status
        /// The connection could not be made or broke.
        case transport
        /// The attempt's deadline passed.
        case timeout
        /// The response body was larger than the limit.
        case responseTooLarge = "response_too_large"
        /// The request could not be built (a template referenced missing data, an invalid URL).
        case request
    }

    public var kind: Kind
    public var reason: String
    public var isRetryable: Bool
    /// The participant's `Retry-After`, if it sent one.
    public var retryAfter: Duration?
    /// The response, when there was one.
    public var response: StepResponse?

    public init(kind: Kind, reason: String, isRetryable: Bool, retryAfter: Duration? = nil, response: StepResponse? = nil) {
        self.kind = kind
        self.reason = reason
        self.isRetryable = isRetryable
        self.retryAfter = retryAfter
        self.response = response
    }
}

/// The classification rules for HTTP statuses: 2xx succeeds; 408, 425, 429 and 5xx are retryable;
/// anything else fails at once.
public enum StatusClassification: Sendable, Equatable {
    case success
    case retryable
    case permanent

    public init(status: Int) {
        switch status {
        case 200...299: self = .success
        case 408, 425, 429, 500...599: self = .retryable
        default: self = .permanent
        }
    }
}

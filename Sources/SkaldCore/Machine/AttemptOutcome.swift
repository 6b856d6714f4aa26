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
    /// The request may have reached the participant and been applied although no answer says so: a timeout, a
    /// connection that broke after the request was sent, a response too large to read. False when an answer came
    /// (a status) or when the request was never sent (it could not be built, the connection was refused).
    public var mayHaveApplied: Bool

    /// - Parameter mayHaveApplied: by default true for timeouts, transport errors and responses too large to read.
    public init(
        kind: Kind, reason: String, isRetryable: Bool, retryAfter: Duration? = nil, response: StepResponse? = nil,
        mayHaveApplied: Bool? = nil
    ) {
        self.kind = kind
        self.reason = reason
        self.isRetryable = isRetryable
        self.retryAfter = retryAfter
        self.response = response
        self.mayHaveApplied = mayHaveApplied ?? (kind == .timeout || kind == .transport || kind == .responseTooLarge)
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

/// A step's own rules for which statuses succeed, are retried, or fail at once.
/// Precedence: `successStatus`, then `failOn`, then `retryOn`, then the defaults.
public struct StatusRules: Sendable, Hashable {
    public enum Pattern: Sendable, Hashable, CustomStringConvertible {
        case exact(Int)
        /// `4xx`: every status with this hundreds digit.
        case range(Int)

        public func matches(_ status: Int) -> Bool {
            switch self {
            case .exact(let code): status == code
            case .range(let hundreds): status / 100 == hundreds
            }
        }

        public var description: String {
            switch self {
            case .exact(let code): "\(code)"
            case .range(let hundreds): "\(hundreds)xx"
            }
        }
    }

    public var successStatus: [Pattern]?
    public var retryOn: [Pattern]
    public var failOn: [Pattern]

    public init(successStatus: [Pattern]? = nil, retryOn: [Pattern] = [], failOn: [Pattern] = []) {
        self.successStatus = successStatus
        self.retryOn = retryOn
        self.failOn = failOn
    }

    public static let standard = StatusRules()

    public func classify(_ status: Int) -> StatusClassification {
        if let successStatus {
            if successStatus.contains(where: { $0.matches(status) }) { return .success }
        } else if (200...299).contains(status) {
            return .success
        }
        if failOn.contains(where: { $0.matches(status) }) { return .permanent }
        if retryOn.contains(where: { $0.matches(status) }) { return .retryable }
        let standard = StatusClassification(status: status)
        // A 2xx that successStatus leaves out is not a success, and not worth retrying either.
        return standard == .success ? .permanent : standard
    }
}

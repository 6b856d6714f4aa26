import SkaldCore

/// Sends one attempt of a call and classifies what came back. Never throws: every failure is an outcome.
public protocol StepExecutor: Sendable {
    func execute(_ request: StepRequest) async -> AttemptOutcome
}

/// Everything needed to send one attempt.
public struct StepRequest: Sendable {
    public var attempt: AttemptKey
    public var call: CallDefinition
    /// What the call's templates may read: input, earlier responses, run id, environment.
    public var context: TemplateContext
    /// The run's trace: the attempt is sent with `traceparent` (and `tracestate`) as a span of it.
    public var trace: RunTrace?

    public init(attempt: AttemptKey, call: CallDefinition, context: TemplateContext, trace: RunTrace? = nil) {
        self.trace = trace
        self.attempt = attempt
        self.call = call
        self.context = context
    }
}

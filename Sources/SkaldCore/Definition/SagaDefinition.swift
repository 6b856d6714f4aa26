/// A validated saga definition: a sequence of HTTP steps, each with an optional compensation.
public struct SagaDefinition: Sendable {
    public var name: String
    public var version: Int
    public var description: String?
    /// A JSON Schema (subset) that a run's input must match; references to the input are checked against it.
    public var inputSchema: InputSchema?
    public var steps: [StepDefinition]
    /// For each step, the steps it waits for: its `dependsOn`, or the step before it when absent.
    public var dependencies: [[Int]]
    /// The point of no return, if any: once it succeeds, the saga only goes forward.
    public var pivot: Int?
    /// How long the run may go forward; when it passes, the run compensates.
    public var deadline: Duration?
    /// The services the saga's steps call, by name, with how Skald protects each (see `ParticipantSettings`).
    public var participants: [String: ParticipantSettings]
    /// What a completed run gives back (`"output": {…}`, templates over its input, responses and callback outputs):
    /// shown by `skald status`, the API and the console.
    public var output: TemplateValue?
    /// The document as written, kept so that the stored definition is exactly what was validated.
    public let document: JSONValue
    /// The canonical JSON text of `document`, computed once.
    public let documentText: String
    /// SHA-256 of the canonical JSON text: a run records the exact definition it runs. Computed once.
    public let contentHash: String

    init(
        name: String, version: Int, description: String?, inputSchema: InputSchema?, steps: [StepDefinition],
        dependencies: [[Int]], pivot: Int?, deadline: Duration?, participants: [String: ParticipantSettings] = [:], document: JSONValue
    ) {
        self.participants = participants
        self.name = name
        self.version = version
        self.description = description
        self.inputSchema = inputSchema
        self.steps = steps
        self.dependencies = dependencies
        self.pivot = pivot
        self.deadline = deadline
        self.document = document
        documentText = document.jsonText
        contentHash = SHA256.hex(documentText)
    }

    /// Things that are allowed but probably not meant: worth a look, and shown with the errors when there are any.
    public var warnings: [DefinitionProblem] {
        let compensations: [DefinitionProblem] = steps.enumerated().compactMap { index, step in
            guard step.compensateUnknown, step.compensationReadsOwnResponse, index != pivot else { return nil }
            return DefinitionProblem(
                path: JSONPath.root.appending("steps").appending(index).appending("compensation"),
                message: "the compensation reads this step's own response, which never comes when the outcome is unknown (a timeout); then it cannot be sent and the run stops in compensation_failed. Name the action with {{steps.\(step.name).idempotencyKey}} (see Participants: what a compensation may meet, in docs/semantics.md), or set \"compensateUnknown\": false")
        }
        return compensations + optionalInputWarnings
    }

    /// A template that reads an input field the `inputSchema` does not require: a run without it is refused at
    /// start, although the schema allows it.
    var optionalInputWarnings: [DefinitionProblem] {
        guard let schema = inputSchema else { return [] }
        return inputReferences.compactMap { reference, usedAt in
            guard case .input(let path) = reference, let optional = schema.firstOptionalField(along: path) else { return nil }
            return DefinitionProblem(
                path: usedAt,
                message: "{{\(reference)}} reads \(optional), which inputSchema does not require: a run whose input leaves it out passes the schema and is then refused at start. Add it to \"required\", or pass it in every input")
        }
    }

    public func stepIndex(named name: String) -> Int? {
        steps.firstIndex { $0.name == name }
    }

    /// The most items a `forEach` step may run over.
    public static let maximumItems = 1000
    /// How many of a `forEach` step's calls run at once when it does not say.
    public static let defaultMaxConcurrency = 10
}

public struct StepDefinition: Sendable, Hashable {
    public var name: String
    /// What the step does going forward: an HTTP call, or a wait for a person or for a time.
    public var action: StepAction
    public var compensation: CallDefinition?
    /// Marks the point of no return.
    public var isPivot: Bool = false
    /// Whether a forward call whose outcome is unknown (it may have been applied) is compensated. For the pivot,
    /// which has no compensation: whether an unknown outcome stops the run for a person (true) or counts as a
    /// refusal, so the steps before it are compensated (false).
    public var compensateUnknown: Bool = true
    /// The participant (one of the saga's `participants`) whose breaker, bulkhead and rate limit the step's calls,
    /// forward and compensation, go through.
    public var participant: String?
    /// Whether the step runs: tested when it is due (its dependencies done); false skips it. A skipped step is never
    /// compensated, and the steps after it go on as if it had succeeded.
    public var when: Condition?
    /// Tested on a 2xx answer to the forward request: true makes it a refusal (nothing was applied; the run turns back).
    public var failWhen: Condition?
    /// Tested on a 2xx answer to the forward request: true retries it, as a retryable status would be.
    public var retryWhen: Condition?
    /// `"forEach": "{{input.items}}"`: the step makes its call once per item of that array (at most
    /// `SagaDefinition.maximumItems`), each with its own attempts, key and compensation.
    public var forEach: TemplateString?
    /// How many of a `forEach` step's calls may be under way at once.
    public var maxConcurrency: Int = SagaDefinition.defaultMaxConcurrency

    /// The forward HTTP call, for a step that makes one.
    public var request: CallDefinition? {
        switch action {
        case .call(let call), .callback(let call, _): call
        case .approval, .sleep, .child: nil
        }
    }

    /// The step can be undone: it declares a compensation, or it runs a child saga (undone by reverting the child).
    public var isUndoable: Bool { compensation != nil || action.child != nil }

    /// The call of `phase`: the forward request (nil for a step that waits instead), or the compensation.
    public func call(_ phase: Phase) -> CallDefinition? {
        phase == .forward ? request : compensation
    }

    /// The compensation reads this step's own response (or callback output), which does not exist when the outcome
    /// is unknown.
    public var compensationReadsOwnResponse: Bool {
        compensation?.references.contains { $0.stepName == name && $0.readsResponse } ?? false
    }
}

/// One HTTP call: a forward request or a compensation.
public struct CallDefinition: Sendable, Hashable {
    public var method: String
    public var url: TemplateString
    public var headers: [Header]
    public var body: TemplateValue?
    /// The deadline of each attempt.
    public var timeout: Duration
    public var retry: RetryPolicy
    /// Which statuses succeed, are retried or fail at once.
    public var statusRules: StatusRules = .standard
    /// The most time from the first attempt to the start of a retry; no retry starts after it.
    public var maxElapsed: Duration?
    /// Headers whose values are never shown (lowercased): the usual credentials and those the call marks secret.
    public var secretHeaders: Set<String> = CallDefinition.alwaysSecretHeaders

    /// Credentials masked wherever a request is shown, whether or not a definition marks them.
    public static let alwaysSecretHeaders: Set<String> = ["authorization", "proxy-authorization", "cookie"]

    /// Whether the header's value is masked wherever the request is shown.
    public func isSecret(header name: String) -> Bool { secretHeaders.contains(name.lowercased()) }

    public struct Header: Sendable, Hashable {
        public var name: String
        public var value: TemplateString
    }

    public var references: [TemplateReference] {
        url.references + headers.flatMap(\.value.references) + (body?.references ?? [])
    }

    /// The references without a `??` default: what must be there for the call to be rendered.
    public var requiredReferences: [TemplateReference] {
        url.requiredReferences + headers.flatMap(\.value.requiredReferences) + (body?.requiredReferences ?? [])
    }
}

public struct RetryPolicy: Sendable, Hashable {
    public enum Jitter: String, Sendable, Hashable, CaseIterable {
        case none
        /// A random delay between zero and the computed backoff ("full jitter").
        case full
    }

    /// All attempts, the first one included.
    public var maxAttempts: Int
    public var initialInterval: Duration
    public var backoffCoefficient: Double
    public var maxInterval: Duration
    public var jitter: Jitter

    public init(
        maxAttempts: Int = 3, initialInterval: Duration = .milliseconds(200), backoffCoefficient: Double = 2,
        maxInterval: Duration = .seconds(10), jitter: Jitter = .full
    ) {
        self.maxAttempts = maxAttempts
        self.initialInterval = initialInterval
        self.backoffCoefficient = backoffCoefficient
        self.maxInterval = maxInterval
        self.jitter = jitter
    }

    /// Defaults for forward requests when neither the step nor the saga says otherwise.
    public static let forwardDefault = RetryPolicy()
    /// Compensations must not give up easily: by default they try longer than forward calls.
    public static let compensationDefault = RetryPolicy(maxAttempts: 10, maxInterval: .seconds(30))
    public static let defaultTimeout: Duration = .seconds(10)
}

extension SagaDefinition {
    /// Every call of the saga with the JSON path of its definition.
    public var calls: [(path: JSONPath, call: CallDefinition)] {
        steps.enumerated().flatMap { index, step in
            let stepPath = JSONPath.root.appending("steps").appending(index)
            var out: [(JSONPath, CallDefinition)] = []
            if let request = step.request { out.append((stepPath.appending("request"), request)) }
            if let compensation = step.compensation { out.append((stepPath.appending("compensation"), compensation)) }
            return out
        }
    }

    /// The templates of the steps that wait (an approval's prompt, a `sleepUntil`), with their JSON paths.
    public var waitTemplates: [(path: JSONPath, template: TemplateString)] {
        steps.enumerated().flatMap { index, step in
            step.action.templates.map { field, template in
                (field.reduce(JSONPath.root.appending("steps").appending(index)) { $0.appending($1) }, template)
            }
        }
    }

    /// The environment variables the saga's templates read.
    public var environmentNames: [String] {
        var names: Set<String> = []
        for (_, call) in calls {
            for case .env(let name) in call.references { names.insert(name) }
        }
        for (_, template) in waitTemplates {
            for case .env(let name) in template.references { names.insert(name) }
        }
        return names.sorted()
    }

    /// The input paths the saga's templates read, each with the path of the first call that reads it.
    public var inputReferences: [(reference: TemplateReference, usedAt: JSONPath)] {
        var seen: Set<TemplateReference> = []
        var out: [(TemplateReference, JSONPath)] = []
        for (path, call) in calls {
            // A reference with a default (`{{input.note ?? ""}}`) does not need the field.
            for reference in call.requiredReferences {
                if case .input = reference, seen.insert(reference).inserted { out.append((reference, path)) }
            }
        }
        for (index, step) in steps.enumerated() {
            if let forEach = step.forEach, let reference = forEach.wholeReference, case .input = reference, seen.insert(reference).inserted {
                out.append((reference, JSONPath.root.appending("steps").appending(index).appending("forEach")))
            }
        }
        for (path, template) in waitTemplates {
            for reference in template.requiredReferences {
                if case .input = reference, seen.insert(reference).inserted { out.append((reference, path)) }
            }
        }
        return out
    }
}

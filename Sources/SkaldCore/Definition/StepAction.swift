/// What a step does going forward: the one place a new kind of step is declared.
///
/// A new kind touches its case here (and its parsing in `DefinitionParser+Steps.swift`), its rules in
/// `SagaMachine+Waits.swift`, and its runner in the engine's `RunDriver+Actions.swift`; the stores, the API and the
/// CLI see every kind the same way, as a step's status, its `wait` and its events.
public enum StepAction: Sendable, Hashable {
    /// An HTTP call, answered at once (today's step).
    case call(CallDefinition)
    /// A person decides: the run waits until an operator approves (the step succeeds) or rejects (it fails for good
    /// and the run compensates), or until `timeout` passes, which is a rejection.
    case approval(ApprovalDefinition)
    /// A durable sleep: the step succeeds once the time comes. The run holds nothing in memory meanwhile.
    case sleep(SleepDefinition)

    /// The kind's name, as the definition and the API spell it.
    public var kind: WaitKind? {
        switch self {
        case .call: nil
        case .approval: .approval
        case .sleep: .sleep
        }
    }

    /// The templates the action renders when the step begins, with the field (below the step) each is at.
    public var templates: [(field: [String], template: TemplateString)] {
        switch self {
        case .call: []
        case .approval(let approval): approval.prompt.map { [(["approval", "prompt"], $0)] } ?? []
        case .sleep(let sleep):
            if case .until(let until) = sleep { [(["sleepUntil"], until)] } else { [] }
        }
    }
}

/// What a waiting step waits for.
public enum WaitKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// A person's decision.
    case approval
    /// A time.
    case sleep
}

/// A step that waits for a person's decision.
public struct ApprovalDefinition: Sendable, Hashable {
    /// How long the run waits for a decision; when it passes, the step is rejected.
    public var timeout: Duration
    /// What the person is asked, rendered when the step begins.
    public var prompt: TemplateString?

    public init(timeout: Duration, prompt: TemplateString?) {
        self.timeout = timeout
        self.prompt = prompt
    }
}

/// How long a sleep lasts.
public enum SleepDefinition: Sendable, Hashable {
    /// From the moment the step begins.
    case duration(Duration)
    /// Until a time, an RFC 3339 text rendered from the input or an earlier step when the step begins.
    case until(TemplateString)
}

/// What a step does going forward: the one place a new kind of step is declared.
///
/// A new kind touches its case here (and its parsing in `DefinitionParser+Steps.swift`), its rules in
/// `SagaMachine+Waits.swift`, and its runner in the engine's `RunDriver+Actions.swift`; the stores, the API and the
/// CLI see every kind the same way, as a step's status, its `wait` and its events.
public enum StepAction: Sendable, Hashable {
    /// An HTTP call, answered at once (today's step).
    case call(CallDefinition)
    /// An HTTP call the participant accepts (a 2xx), then completes later by posting to the step's callback URL.
    case callback(CallDefinition, CallbackDefinition)
    /// A person decides: the run waits until an operator approves (the step succeeds) or rejects (it fails for good
    /// and the run compensates), or until `timeout` passes, which is a rejection.
    case approval(ApprovalDefinition)
    /// A durable sleep: the step succeeds once the time comes. The run holds nothing in memory meanwhile.
    case sleep(SleepDefinition)
    /// Another saga, run as a child: the step starts it (once: its idempotency key comes from this step) and waits for
    /// it to end. Completed, the step succeeds with the child's output; compensated, the step failed with nothing
    /// applied. Undoing the step reverts the child: its compensations run, and it ends compensated.
    case child(ChildSagaDefinition)

    /// The kind's name, as the definition and the API spell it.
    public var kind: WaitKind? {
        switch self {
        case .call: nil
        case .callback: .callback
        case .approval: .approval
        case .sleep: .sleep
        case .child: .child
        }
    }

    /// The step makes no HTTP call going forward: it only waits (an approval, a sleep).
    public var waitsInsteadOfCalling: Bool {
        switch self {
        case .call, .callback: false
        case .approval, .sleep, .child: true
        }
    }

    /// The child saga a step runs, for one that does.
    public var child: ChildSagaDefinition? {
        if case .child(let child) = self { return child }
        return nil
    }

    /// How the participant completes a callback step, for one that is.
    public var callback: CallbackDefinition? {
        if case .callback(_, let callback) = self { return callback }
        return nil
    }

    /// The templates the action renders when the step begins, with the field (below the step) each is at.
    public var templates: [(field: [String], template: TemplateString)] {
        switch self {
        case .call, .callback: []
        case .approval(let approval): approval.prompt.map { [(["approval", "prompt"], $0)] } ?? []
        case .sleep(let sleep):
            if case .until(let until) = sleep { [(["sleepUntil"], until)] } else { [] }
        case .child: []
        }
    }
}

/// What a waiting step waits for.
public enum WaitKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// The participant's callback, after it accepted the step's request.
    case callback
    /// A person's decision.
    case approval
    /// A time.
    case sleep
    /// A child run of another saga, to end.
    case child
}

/// A step that runs another saga as a child run.
public struct ChildSagaDefinition: Sendable, Hashable {
    /// The child saga's name, as registered on the server.
    public var name: String
    /// The version to run; nil runs the latest registered when the step starts.
    public var version: Int?
    /// The child run's input, rendered from this run when the step starts.
    public var input: TemplateValue

    public init(name: String, version: Int?, input: TemplateValue) {
        self.name = name
        self.version = version
        self.input = input
    }

    /// The idempotency key of the child run a step of a run starts: the same however often the step starts it (after a
    /// crash, a take-over), so there is never a second child.
    public static func key(runID: String, step: String) -> String { "\(runID):\(step):child" }

    /// The run and step a child run's idempotency key names, for a key `key(runID:step:)` made.
    public static func parent(ofKey key: String) -> (runID: String, step: String)? {
        guard key.hasSuffix(":child") else { return nil }
        let parts = key.dropLast(":child".count).split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    /// How deep children may nest: a run's child, its child's child, … at most this many levels below a run started
    /// by a person.
    public static let maximumDepth = 5
}

/// How long a participant that accepted a callback step's request may take to complete it.
public struct CallbackDefinition: Sendable, Hashable {
    /// The longest the step waits for the callback after the request was accepted; past it the outcome is unknown.
    public var timeout: Duration
    /// When set, the participant must post `{"status": "heartbeat"}` at least this often, or the wait ends as a timeout.
    public var heartbeat: Duration?

    public init(timeout: Duration, heartbeat: Duration?) {
        self.timeout = timeout
        self.heartbeat = heartbeat
    }
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

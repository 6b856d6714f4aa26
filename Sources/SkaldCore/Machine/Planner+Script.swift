import Foundation

/// `skald plan --when kyc=refused --when review=skipped`: the run as it goes when the saga's conditions come out as
/// scripted, worked out by the real machine like the rest of the plan.
public enum PlannedDecision: String, Sendable, Hashable, CaseIterable {
    /// The step's `when` is false: it is skipped.
    case skipped
    /// The step's `when` is true: it runs (what the plan assumes otherwise).
    case runs
    /// The step's `failWhen` holds on its answer: a refusal, and the run turns back.
    case refused
    /// The step's `retryWhen` holds on every answer: still pending after its last attempt, an unknown outcome.
    case pending

    /// The field of a step that makes this decision.
    public var field: String {
        switch self {
        case .skipped, .runs: "when"
        case .refused: "failWhen"
        case .pending: "retryWhen"
        }
    }
}

/// The run under a script: what ran wave by wave, what was skipped, what was undone and how it ended.
public struct ScriptedPlan: Sendable {
    public var script: [(step: String, decision: PlannedDecision)]
    /// The steps sent at the same time, wave after wave, going forward.
    public var waves: [[String]]
    public var skipped: [String]
    /// The step whose scripted answer turned the run back, if one did.
    public var turnedBackAt: String?
    /// Compensations in the order they start; those in one group run at the same time.
    public var compensationWaves: [[String]]
    /// Steps never sent (after the run turned back).
    public var notRun: [String]
    public var outcome: RunStatus
    /// When the run ends stuck: the step a person must look at.
    public var stuckStep: String?
}

extension Planner {
    /// Why `script` cannot be planned (a step the saga lacks, or one without the condition its decision needs), or nil.
    public static func problem(with script: [(step: String, decision: PlannedDecision)], in saga: SagaDefinition) -> String? {
        for (name, decision) in script {
            guard let step = saga.steps.first(where: { $0.name == name }) else {
                return "--when \(name)=\(decision.rawValue): the saga has no step \(name)\(Suggestion.didYouMean(name, in: saga.steps.map(\.name))); its steps are \(saga.steps.map(\.name).joined(separator: ", "))"
            }
            let has: Bool
            switch decision {
            case .skipped, .runs: has = step.when != nil
            case .refused: has = step.failWhen != nil
            case .pending: has = step.retryWhen != nil
            }
            if !has {
                let offered = PlannedDecision.allCases.filter { candidate in
                    switch candidate {
                    case .skipped, .runs: step.when != nil
                    case .refused: step.failWhen != nil
                    case .pending: step.retryWhen != nil
                    }
                }.map(\.rawValue)
                return "--when \(name)=\(decision.rawValue): \(name) has no \"\(decision.field)\"" + (offered.isEmpty
                    ? ", nor any condition to script" : "; its conditions can be scripted as \(offered.map { "\(name)=\($0)" }.joined(separator: ", "))")
            }
        }
        return nil
    }

    /// The run as it goes when every condition comes out as `script` says (the rest: each step runs, and every
    /// answer is accepted). Check the script with `problem(with:in:)` first.
    public static func plan(_ saga: SagaDefinition, script: [(step: String, decision: PlannedDecision)]) -> ScriptedPlan {
        let machine = SagaMachine(saga: saga)
        let decisions = Dictionary(script.map { ($0.step, $0.decision) }, uniquingKeysWith: { _, last in last })
        var state = machine.start(runID: "plan", at: epoch).state
        var waves: [[String]] = []
        var turnedBackAt: String?
        while state.status == .running {
            // A step with `when` is tested as it comes due; one scripted skipped is skipped, as the driver would.
            for index in state.dueSteps(at: epoch) where machine.decidesBeforeStarting(state, step: index) {
                if decisions[saga.steps[index].name] == .skipped { state = machine.skip(state, step: index, at: epoch).state }
            }
            let due = state.dueSteps(at: epoch)
            guard !due.isEmpty else { break }
            let refusing = due.first { [.refused, .pending].contains(decisions[saga.steps[$0].name]) }
            let outcome: AttemptOutcome = refusing.map { decisions[saga.steps[$0].name] == .pending ? unknown : failure } ?? failure
            _ = runWave(machine, &state, failing: refusing, failure: outcome)
            waves.append(due.map { state.steps[$0].name })
            if let refusing { turnedBackAt = saga.steps[refusing].name }
        }
        var compensationWaves: [[String]] = []
        while state.status == .compensating {
            let due = runWave(machine, &state)
            guard !due.isEmpty else { break }
            compensationWaves.append(due.map { state.steps[$0].name })
        }
        let sent = Set(waves.joined())
        let skipped = Set(state.steps.filter { $0.status == .skipped }.map(\.name))
        return ScriptedPlan(
            script: script, waves: waves, skipped: state.steps.filter { $0.status == .skipped }.map(\.name), turnedBackAt: turnedBackAt,
            compensationWaves: compensationWaves,
            notRun: saga.steps.map(\.name).filter { !sent.contains($0) && !skipped.contains($0) },
            outcome: state.status, stuckStep: state.stuck?.step)
    }
}

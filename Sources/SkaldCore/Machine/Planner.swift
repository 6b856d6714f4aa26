import Foundation

/// What a saga will do, worked out by driving the real `SagaMachine` with scripted outcomes: nothing is sent.
public struct SagaPlan: Sendable {
    public struct CallSchedule: Sendable {
        public var timeout: Duration
        public var maxAttempts: Int
        /// The wait before attempts 2, 3, …: the smallest and largest delay (full jitter starts at zero).
        public var delays: [ClosedRange<Duration>]
        /// No retry starts later than this after the first attempt.
        public var maxElapsed: Duration?
        /// Every attempt reaching its deadline and every wait at its longest.
        public var worstCase: Duration
    }

    /// How long a step that waits may wait.
    public struct WaitSchedule: Sendable {
        public var kind: WaitKind
        /// The approval's timeout or the sleep's length; nil for a sleep until a time given when the run starts.
        public var longest: Duration?
    }

    public struct Step: Sendable {
        public var name: String
        public var dependsOn: [String]
        public var isPivot: Bool
        /// The forward call, for a step that makes one.
        public var request: CallSchedule?
        /// The wait, for a step that waits instead.
        public var wait: WaitSchedule?
        public var compensation: CallSchedule?
        /// The step's conditions, as people read them: when it runs, and when a 2xx answer fails or is retried.
        public var when: String?
        public var failWhen: String?
        public var retryWhen: String?
        /// For a `forEach` step: what it runs over (`input.items`) and how many of its item calls run at once. Its
        /// worst case is one item's: the items run side by side (more than `maxConcurrency` of them take longer).
        public var forEach: String?
        public var maxConcurrency: Int?

        /// The longest the step's forward work may take (a sleep until a given time counts as none: it is not known).
        public var worstCase: Duration { request?.worstCase ?? wait?.longest ?? .zero }
    }

    /// What happens when one step fails for good.
    public struct Failure: Sendable {
        public var step: String
        /// Steps in flight beside it, which are allowed to finish (and are then compensated).
        public var finishing: [String]
        /// Compensations in the order they start; those in one group run at the same time.
        public var compensationWaves: [[String]]
        /// Completed steps passed over because they declare no compensation.
        public var skipped: [String]
        public var outcome: RunStatus
        /// When the failure comes after the pivot: the step a person must look at.
        public var stuckStep: String?
        /// The same failure when the step's outcome is unknown (its attempts timed out): it may have been applied.
        public var ifOutcomeUnknown: UnknownOutcome
    }

    /// What happens instead when the failing step's outcome is unknown.
    public struct UnknownOutcome: Sendable {
        public var compensationWaves: [[String]]
        public var outcome: RunStatus
        public var stuckStep: String?
    }

    public var saga: String
    public var version: Int
    /// Steps that run at the same time, wave after wave, when every call succeeds at once.
    public var waves: [[String]]
    public var steps: [Step]
    /// The longest chain of worst cases through the dependencies.
    public var worstCase: Duration
    public var criticalPath: [String]
    public var deadline: Duration?
    public var failures: [Failure]
}

public enum Planner {
    /// Plans `saga`; `failAt` limits the failure scenarios to those steps (all steps when nil).
    public static func plan(_ saga: SagaDefinition, failAt: [String]? = nil) -> SagaPlan {
        let machine = SagaMachine(saga: saga)
        let steps = saga.steps.enumerated().map { index, step in
            SagaPlan.Step(
                name: step.name, dependsOn: saga.dependencies[index].map { saga.steps[$0].name }, isPivot: step.isPivot,
                request: step.request.map(schedule), wait: wait(step.action), compensation: step.compensation.map(schedule),
                when: step.when?.summary, failWhen: step.failWhen?.summary, retryWhen: step.retryWhen?.summary,
                forEach: step.forEach?.wholeReference.map { "\($0)" }, maxConcurrency: step.forEach == nil ? nil : step.maxConcurrency)
        }
        // Longest path of worst cases through the dependency graph (indexes in dependency order).
        var finish = [Duration](repeating: .zero, count: saga.steps.count)
        var previous = [Int?](repeating: nil, count: saga.steps.count)
        for index in topologicalOrder(saga) {
            let before = saga.dependencies[index].max { finish[$0] < finish[$1] }
            finish[index] = (before.map { finish[$0] } ?? .zero) + steps[index].worstCase
            previous[index] = before
        }
        var path: [String] = []
        var cursor = finish.indices.max { finish[$0] < finish[$1] }
        while let index = cursor {
            path.insert(saga.steps[index].name, at: 0)
            cursor = previous[index]
        }
        var worstCase = finish.max() ?? .zero
        if let deadline = saga.deadline { worstCase = min(worstCase, deadline) }

        let failing = failAt.map { names in saga.steps.indices.filter { names.contains(saga.steps[$0].name) } } ?? Array(saga.steps.indices)
        return SagaPlan(
            saga: saga.name, version: saga.version, waves: simulateWaves(machine), steps: steps, worstCase: worstCase,
            criticalPath: path, deadline: saga.deadline, failures: failing.map { simulateFailure(machine, at: $0) })
    }

    static func schedule(_ call: CallDefinition) -> SagaPlan.CallSchedule {
        let delays = (1..<max(1, call.retry.maxAttempts)).map { call.retry.delayBounds(afterAttempt: $0) }
        let waits = delays.reduce(Duration.zero) { $0 + $1.upperBound }
        var worstCase = call.timeout * call.retry.maxAttempts + waits
        // No retry starts after maxElapsed; the last attempt may still run for its whole timeout.
        if let maxElapsed = call.maxElapsed { worstCase = min(worstCase, maxElapsed + call.timeout) }
        return SagaPlan.CallSchedule(
            timeout: call.timeout, maxAttempts: call.retry.maxAttempts, delays: delays, maxElapsed: call.maxElapsed,
            worstCase: worstCase)
    }

    static func wait(_ action: StepAction) -> SagaPlan.WaitSchedule? {
        switch action {
        case .call: nil
        case .callback(_, let callback): SagaPlan.WaitSchedule(kind: .callback, longest: callback.timeout)
        case .approval(let approval): SagaPlan.WaitSchedule(kind: .approval, longest: approval.timeout)
        case .sleep(.duration(let duration)): SagaPlan.WaitSchedule(kind: .sleep, longest: duration)
        case .sleep(.until): SagaPlan.WaitSchedule(kind: .sleep, longest: nil)
        case .child: SagaPlan.WaitSchedule(kind: .child, longest: nil)
        }
    }

    static func topologicalOrder(_ saga: SagaDefinition) -> [Int] {
        var order: [Int] = []
        var done = Set<Int>()
        func visit(_ index: Int) {
            guard !done.contains(index) else { return }
            done.insert(index)
            for dependency in saga.dependencies[index] { visit(dependency) }
            order.append(index)
        }
        for index in saga.steps.indices { visit(index) }
        return order
    }

    static let epoch = Date(timeIntervalSince1970: 0)

    static let success = AttemptOutcome.succeeded(StepResponse(status: 200, body: .null))
    static let failure = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "planned failure", isRetryable: false))
    static let unknown = AttemptOutcome.failed(AttemptFailure(kind: .timeout, reason: "planned timeout", isRetryable: false))

    /// Sends every due attempt at once, then finishes them in order: `failing` (if due) first with a failure,
    /// the rest with success. Returns the names of the steps that were due (one wave).
    static func runWave(_ machine: SagaMachine, _ state: inout RunState, failing: Int? = nil, failure: AttemptOutcome = failure) -> [Int] {
        let due = state.dueSteps(at: epoch)
        // A step that waits begins its wait (for the plan, one that ends at once), except a sleep that fails, whose
        // time could not be worked out; a step that calls sends its attempt.
        for index in due where !(index == failing && machine.saga.steps[index].action.kind == .sleep) {
            let action = machine.saga.steps[index].action
            // A child step being undone sends nothing: its child is reverted (below, at once).
            if action.child != nil && state.steps[index].status == .compensating { continue }
            if state.steps[index].status == .running, action.waitsInsteadOfCalling, let kind = action.kind {
                state = machine.beginWait(state, step: index, wait: StepWait(kind: kind, since: epoch, until: epoch), at: epoch).state
            } else {
                let token = state.steps[index].status == .running && action.callback != nil ? "plan" : nil
                state = machine.beginAttempt(state, step: index, at: epoch, callbackToken: token).state
            }
        }
        let ordered = due.filter { $0 == failing } + due.filter { $0 != failing }
        for index in ordered {
            let fails = index == failing
            let step = state.steps[index]
            if step.status == .compensating, machine.saga.steps[index].action.child != nil {
                state = machine.childChecked(state, step: index, child: .compensated(reason: "reverted"), at: epoch).state
            } else if step.status == .running, step.dueAt != nil, machine.saga.steps[index].action.kind == .sleep, !step.isInFlight {
                state = machine.waitCannotBegin(state, step: index, reason: "planned failure", at: epoch).state
            } else if step.status == .waiting, step.wait?.kind == .approval {
                state = machine.decide(state, step: step.name, approve: !fails, by: "plan", note: "", at: epoch)?.state ?? state
            } else if step.status == .waiting, step.wait?.kind == .child {
                // For the plan, a child run ends at once: completed, or compensated when the step fails.
                let child: ChildState = fails ? .compensated(reason: "planned failure") : .completed(output: .null)
                state = machine.childChecked(state, step: index, child: child, at: epoch).state
            } else if step.status == .waiting {
                state = machine.waitEnded(state, step: index, at: epoch).state
            } else if step.isInFlight {
                let outcome = fails ? failure : success
                state = machine.finishAttempt(state, step: index, outcome: outcome, duration: .zero, at: epoch, jitterSample: 0).state
                // A callback step that was accepted: for the plan, its callback comes at once.
                if state.steps[index].status == .waiting, state.steps[index].wait?.kind == .callback {
                    state = machine.callbackReceived(
                        state, step: index, attempt: state.steps[index].attempts, signal: .succeeded(output: .null), receivedAt: epoch, at: epoch
                    )?.state ?? state
                }
            }
        }
        return due
    }

    /// Every due step is sent at once and succeeds: each round is a wave.
    static func simulateWaves(_ machine: SagaMachine) -> [[String]] {
        var state = machine.start(runID: "plan", at: epoch).state
        var waves: [[String]] = []
        while !state.status.isTerminal {
            let due = runWave(machine, &state)
            guard !due.isEmpty else { break }
            waves.append(due.map { state.steps[$0].name })
        }
        return waves
    }

    /// Runs the saga until `failing` is due, fails it for good while its wave is in flight, lets the rest of the
    /// wave succeed, then records the compensations as they become due.
    static func simulateFailure(_ machine: SagaMachine, at failing: Int) -> SagaPlan.Failure {
        var failure = simulateFailure(machine, at: failing, outcome: Self.failure)
        let unknown = simulateFailure(machine, at: failing, outcome: Self.unknown)
        failure.ifOutcomeUnknown = unknown.ifOutcomeUnknown
        return failure
    }

    static func simulateFailure(_ machine: SagaMachine, at failing: Int, outcome failure: AttemptOutcome) -> SagaPlan.Failure {
        var state = machine.start(runID: "plan", at: epoch).state
        var finishing: [String] = []
        while state.status == .running {
            let due = runWave(machine, &state, failing: failing, failure: failure)
            guard !due.isEmpty else { break }
            if due.contains(failing) {
                finishing = due.filter { $0 != failing }.map { state.steps[$0].name }
                break
            }
        }
        var waves: [[String]] = []
        while state.status == .compensating {
            let due = runWave(machine, &state)
            guard !due.isEmpty else { break }
            waves.append(due.map { state.steps[$0].name })
        }
        return SagaPlan.Failure(
            step: machine.saga.steps[failing].name, finishing: finishing, compensationWaves: waves,
            skipped: state.steps.filter { $0.status == .compensationSkipped }.map(\.name), outcome: state.status,
            stuckStep: state.stuck?.step,
            ifOutcomeUnknown: SagaPlan.UnknownOutcome(compensationWaves: waves, outcome: state.status, stuckStep: state.stuck?.step))
    }
}

import Foundation
import Logging
import SkaldCore

/// Drives one run: sends every due attempt, waits for outcomes and timers, and stores each transition
/// before acting on it. Attempts of different steps may be in flight at once.
struct RunDriver {
    let engine: Engine
    let machine: SagaMachine
    let runID: String
    let input: JSONValue
    var state: RunState

    init(engine: Engine, machine: SagaMachine, runID: String, input: JSONValue, state: RunState) {
        self.engine = engine
        self.machine = machine
        self.runID = runID
        self.input = input
        self.state = state
    }

    private enum Wake: Sendable {
        case finished(AttemptKey, AttemptOutcome, Duration)
        case timer(Date)
    }

    mutating func run() async throws -> RunState {
        try await withThrowingTaskGroup(of: Wake.self) { group in
            var inFlight = 0
            var timer: Date?

            // Attempts that were sent before a restart and have no outcome: send them again, same key.
            for index in state.inFlightSteps {
                let now = engine.clock.now()
                let transition = machine.resendInterruptedAttempt(state, step: index, at: now)
                let key = attemptKey(index)
                try await engine.store.recordAttemptResent(key, at: now, transition: transition)
                commit(transition)
                launch(key, in: &group)
                inFlight += 1
            }

            loop: while true {
                let now = engine.clock.now()
                for index in state.dueSteps(at: now) {
                    let transition = machine.beginAttempt(state, step: index, at: now)
                    let key = attemptKey(index, in: transition.state)
                    try await engine.store.recordAttemptStarted(key, at: now, transition: transition)
                    commit(transition)
                    launch(key, in: &group)
                    inFlight += 1
                }
                if inFlight == 0 && (state.status.isTerminal || state.nextDueAt == nil) { break }
                if let next = state.nextDueAt, timer.map({ next < $0 }) ?? true {
                    timer = next
                    let clock = engine.clock
                    group.addTask {
                        try await clock.sleep(until: next)
                        return .timer(next)
                    }
                }
                switch try await group.next() {
                case .timer(let date)?:
                    if date == timer { timer = nil }
                case .finished(let key, let outcome, let duration)?:
                    inFlight -= 1
                    let finishedAt = engine.clock.now()
                    let transition = machine.finishAttempt(
                        state, step: key.step, outcome: outcome, duration: duration, at: finishedAt,
                        jitterSample: engine.configuration.jitterSample())
                    try await engine.store.recordAttemptFinished(
                        AttemptResult(attempt: key, outcome: outcome, duration: duration, finishedAt: finishedAt),
                        transition: transition)
                    commit(transition)
                case nil:
                    break loop
                }
            }
            group.cancelAll()
        }
        return state
    }

    private mutating func commit(_ transition: SagaMachine.Transition) {
        state = transition.state
        engine.publish(runID, transition.events)
    }

    private func attemptKey(_ index: Int, in state: RunState? = nil) -> AttemptKey {
        let step = (state ?? self.state).steps[index]
        let phase = step.status.phase ?? .forward
        return AttemptKey(runID: runID, step: index, stepName: step.name, phase: phase, number: step.attempts(in: phase))
    }

    private func launch(_ key: AttemptKey, in group: inout ThrowingTaskGroup<Wake, any Error>) {
        let step = machine.saga.steps[key.step]
        let call = key.phase == .forward ? step.request : step.compensation!
        var responses: [String: StepResponse] = [:]
        for stepState in state.steps {
            if let response = stepState.response { responses[stepState.name] = response }
        }
        let request = StepRequest(
            attempt: key, call: call,
            context: TemplateContext(input: input, runID: runID, env: engine.configuration.environment, responses: responses))
        let executor = engine.executor
        engine.logger.debug(
            "sending attempt",
            metadata: ["saga.run_id": "\(runID)", "saga.step": "\(key.stepName)", "saga.phase": "\(key.phase.rawValue)", "saga.attempt": "\(key.number)"])
        group.addTask {
            let started = ContinuousClock.now
            let outcome = await executor.execute(request)
            return .finished(key, outcome, ContinuousClock.now - started)
        }
    }
}

import Foundation
import Testing
@testable import SkaldCore
import SkaldTestSupport

/// The rules a stored run is checked against before it is driven: every state the machine writes keeps them, and
/// each broken one is named with its path.
@Suite(.timeLimit(.minutes(10))) struct RunStateInvariantTests {
    /// A small deterministic random source, so a failing walk can be replayed.
    struct Random {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    static let outcomes: [AttemptOutcome] = [.ok, .ok, .ok, .unavailable, .declined, .timedOut]

    /// Random walks through every input the machine takes: attempts and their outcomes, participant waits, restarts,
    /// the deadline, and every operator action. After each transition the state keeps every rule, so a run the
    /// machine wrote is never refused as unrunnable.
    @Test(arguments: [threeSteps, diamond, trip])
    func everyStateTheMachineWritesKeepsTheRules(_ text: String) throws {
        let machine = SagaMachine(saga: try saga(text))
        var random = Random(state: 42)
        var transitions = 0
        for walk in 0..<400 {
            var now = t0
            var state = machine.start(runID: "r\(walk)", at: now).state
            #expect(machine.problems(in: state).isEmpty)
            for _ in 0..<60 {
                now = now.addingTimeInterval(Double(random.next(20)))
                var options: [() -> SagaMachine.Transition?] = []
                for index in state.dueSteps(at: now) {
                    options.append { machine.beginAttempt(state, step: index, at: now) }
                    options.append { machine.waitForParticipant(state, step: index, participant: "p", until: now.addingTimeInterval(5), at: now) }
                }
                for index in state.inFlightSteps {
                    let outcome = Self.outcomes[random.next(Self.outcomes.count)]
                    options.append {
                        machine.finishAttempt(state, step: index, outcome: outcome, duration: .milliseconds(3), at: now, jitterSample: 0.5)
                    }
                    options.append { machine.resendInterruptedAttempt(state, step: index, at: now) }
                }
                options.append { machine.cancel(state, reason: "walk", at: now) }
                options.append { machine.deadlinePassed(state, at: now.addingTimeInterval(120)) }
                options.append { machine.retryCompensation(state, at: now) }
                options.append { machine.resume(state, at: now) }
                for step in state.steps where step.status == .compensationFailed || step.failedForward {
                    options.append { machine.resolve(state, step: step.name, note: "by hand", response: ["id": "by-hand"], at: now) }
                }
                if random.next(30) == 0 { options.append { machine.abandon(state, note: "settled", at: now) } }
                guard let transition = options[random.next(options.count)]() else {
                    if state.status.isTerminal && state.inFlightSteps.isEmpty { break }
                    continue
                }
                state = transition.state
                transitions += 1
                let problems = machine.problems(in: state)
                #expect(problems.isEmpty, "walk \(walk) of \(machine.saga.name): \(problems) after \(transition.events.map(\.kind))")
                if !problems.isEmpty { return }
                if state.status.isTerminal && state.inFlightSteps.isEmpty { break }
            }
        }
        #expect(transitions > 1_000)
    }

    let machine = SagaMachine(saga: try! saga(threeSteps))

    func problems(_ change: (inout RunState) -> Void) -> [String] {
        var state = machine.start(runID: "r", at: t0).state
        change(&state)
        return machine.problems(in: state).map(\.description)
    }

    @Test func aFinishedStepWithADueTimeIsNamed() {
        // The import that crashed every node: a running run whose step succeeded but is still due.
        let found = problems { state in
            state.steps[0].status = .succeeded
            state.steps[0].response = .ok()
        }
        #expect(found.contains { $0.hasPrefix("steps[0].dueAt: a: a step in status succeeded") })
    }

    @Test func attemptCountsOutsideThePolicyAreNamed() {
        #expect(problems { $0.steps[0].attempts = Int.max }.contains { $0.hasPrefix("steps[0].attempts:") })
        #expect(problems { $0.steps[0].attempts = -1 }.contains { $0.hasPrefix("steps[0].attempts:") })
        #expect(problems { $0.steps[0].attempts = 2; $0.steps[0].attemptsBase = 3 }.contains { $0.hasPrefix("steps[0].attemptsBase:") })
        // maxAttempts is 3: four counted attempts cannot have been made.
        #expect(problems { $0.steps[0].attempts = 4 }.contains { $0.contains("4 attempts counted against a retry policy of maxAttempts 3") })
        #expect(problems { $0.steps[0].attempts = 7; $0.steps[0].attemptsBase = 4 }.isEmpty, "after a resume the policy counts afresh")
    }

    @Test func statusesThatNeedACompensationOrAnAttemptAreNamed() {
        #expect(problems { $0.steps[2].status = .compensating; $0.steps[2].response = .ok() }.contains { $0.hasPrefix("steps[2].status:") })
        #expect(problems { $0.steps[0].dueAt = nil }.contains { $0.hasPrefix("steps[0].dueAt: a: a running step with no attempt made yet") })
        #expect(problems { $0.steps[1].status = .succeeded }.contains { $0.hasPrefix("steps[1].response:") })
        #expect(
            problems { state in
                state.steps[0].status = .pending
                state.steps[0].dueAt = nil
            }.contains { $0.hasPrefix("status: a run in status running has a step under way") })
        #expect(problems { $0.deadlineAt = Date(timeIntervalSince1970: 1e300) }.contains { $0.hasPrefix("deadlineAt:") })
        #expect(problems { $0.steps[0].dueAt = Date(timeIntervalSince1970: -5) }.contains { $0.hasPrefix("steps[0].dueAt:") })
    }

    @Test func stepsThatAreNotTheDefinitionsAreNamed() {
        var state = RunState(id: "r", stepNames: ["a", "b"])
        state.status = .completed
        #expect(machine.problems(in: state).map(\.description) == ["steps: the steps (a, b) are not the steps of its definition (a, b, c)"])
    }
}

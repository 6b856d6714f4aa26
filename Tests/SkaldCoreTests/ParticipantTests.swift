import Foundation
import Testing
@testable import SkaldCore
import SkaldTestSupport



private func failure(status: Int) -> AttemptOutcome {
    .failed(
        AttemptFailure(
            kind: .status, reason: "HTTP \(status)", isRetryable: status >= 500, response: StepResponse(status: status, body: .null)))
}

private let timeout = AttemptOutcome.failed(AttemptFailure(kind: .timeout, reason: "no answer", isRetryable: true))

@Suite(.timeLimit(.minutes(10))) struct CircuitBreakerTests {
    private func breaker(_ settings: CircuitBreakerSettings = CircuitBreakerSettings(window: .calls(10), minimumCalls: 10, failureRate: 50))
        -> CircuitBreaker
    {
        CircuitBreaker(settings: settings)
    }

    @Test func opensWhenHalfTheWindowFailsButNotBeforeTheMinimumCalls() {
        var breaker = breaker()
        for call in 0..<9 {
            #expect(breaker.decide(at: t0) == .allow(probe: false))
            breaker.record(call.isMultiple(of: 2) ? .failure : .success, duration: .milliseconds(5), probe: false, at: t0)
        }
        // 5 failures of 9 calls: over the rate, but under the minimum of 10 calls.
        #expect(breaker.state == .closed)
        breaker.record(.success, duration: .milliseconds(5), probe: false, at: t0)
        // 5 of 10: the threshold.
        #expect(breaker.state == .open)
        #expect(breaker.decide(at: t0.addingTimeInterval(9.9)) == .rejectUntil(t0.addingTimeInterval(10)))
    }

    @Test func onlyTransportTimeoutsServerErrorsAnd429Count() {
        #expect(ParticipantVerdict(failure(status: 503)) == .failure)
        #expect(ParticipantVerdict(failure(status: 429)) == .failure)
        #expect(ParticipantVerdict(timeout) == .failure)
        #expect(ParticipantVerdict(.failed(AttemptFailure(kind: .transport, reason: "refused", isRetryable: true))) == .failure)
        // A refusal the step declares means the participant is up.
        #expect(ParticipantVerdict(failure(status: 402)) == .success)
        #expect(ParticipantVerdict(failure(status: 409)) == .success)
        // Never sent: says nothing.
        #expect(ParticipantVerdict(.failed(AttemptFailure(kind: .request, reason: "bad template", isRetryable: false))) == .notCounted)

        var breaker = breaker()
        for _ in 0..<20 { breaker.record(ParticipantVerdict(failure(status: 402)), duration: .zero, probe: false, at: t0) }
        #expect(breaker.state == .closed)
    }

    @Test func halfOpenLetsTheProbesThroughAndClosesWhenTheySucceed() {
        var breaker = breaker(CircuitBreakerSettings(window: .calls(2), minimumCalls: 2, failureRate: 50, openFor: .seconds(10), probes: 2))
        breaker.record(.failure, duration: .zero, probe: false, at: t0)
        breaker.record(.failure, duration: .zero, probe: false, at: t0)
        #expect(breaker.state == .open)
        let later = t0.addingTimeInterval(10)
        #expect(breaker.decide(at: later) == .allow(probe: true))
        #expect(breaker.state == .halfOpen)
        #expect(breaker.decide(at: later) == .allow(probe: true))
        #expect(breaker.decide(at: later) == .waitForProbes)
        breaker.record(.success, duration: .zero, probe: true, at: later)
        #expect(breaker.state == .halfOpen)
        breaker.record(.success, duration: .zero, probe: true, at: later)
        #expect(breaker.state == .closed)
        #expect(breaker.decide(at: later) == .allow(probe: false))
    }

    @Test func aFailedProbeOpensItAgainForLongerUpToTheMaximum() {
        var breaker = breaker(
            CircuitBreakerSettings(window: .calls(1), minimumCalls: 1, failureRate: 100, openFor: .seconds(10), maxOpenFor: .seconds(25), backoffCoefficient: 2))
        breaker.record(.failure, duration: .zero, probe: false, at: t0)
        var now = t0
        var waits: [TimeInterval] = []
        for _ in 0..<3 {
            waits.append(breaker.openUntil!.timeIntervalSince(now))
            now = breaker.openUntil!
            #expect(breaker.decide(at: now) == .allow(probe: true))
            breaker.record(.failure, duration: .zero, probe: true, at: now)
        }
        #expect(waits == [10, 20, 25])
        // Closing starts the wait afresh.
        now = breaker.openUntil!
        _ = breaker.decide(at: now)
        breaker.record(.success, duration: .zero, probe: true, at: now)
        breaker.record(.failure, duration: .zero, probe: false, at: now)
        #expect(breaker.openUntil == now.addingTimeInterval(10))
    }

    @Test func aProbeOfAnEarlierRoundChangesNothing() {
        var breaker = breaker(CircuitBreakerSettings(window: .calls(1), minimumCalls: 1, failureRate: 100, openFor: .seconds(10), probes: 2))
        breaker.record(.failure, duration: .zero, probe: false, at: t0)
        var now = t0.addingTimeInterval(10)
        #expect(breaker.decide(at: now) == .allow(probe: true))
        #expect(breaker.decide(at: now) == .allow(probe: true))
        let firstRound = breaker.timesOpened
        // The first probe fails: open again; the second is still in flight.
        breaker.record(.failure, duration: .zero, probe: true, round: firstRound, at: now)
        #expect(breaker.state == .open)
        now = breaker.openUntil!
        #expect(breaker.decide(at: now) == .allow(probe: true))
        // The late success of the first round's second probe neither counts nor frees a probe of this round.
        breaker.record(.success, duration: .zero, probe: true, round: firstRound, at: now)
        breaker.returnProbe(round: firstRound)
        #expect(breaker.state == .halfOpen)
        #expect(breaker.decide(at: now) == .allow(probe: true))
        #expect(breaker.decide(at: now) == .waitForProbes)
        breaker.record(.success, duration: .zero, probe: true, round: breaker.timesOpened, at: now)
        breaker.record(.success, duration: .zero, probe: true, round: breaker.timesOpened, at: now)
        #expect(breaker.state == .closed)
    }

    @Test func aProbeThatWasNeverSentLetsAnotherGo() {
        var breaker = breaker(CircuitBreakerSettings(window: .calls(1), minimumCalls: 1, failureRate: 100, probes: 1))
        breaker.record(.failure, duration: .zero, probe: false, at: t0)
        let later = t0.addingTimeInterval(10)
        #expect(breaker.decide(at: later) == .allow(probe: true))
        #expect(breaker.decide(at: later) == .waitForProbes)
        breaker.returnProbe()
        #expect(breaker.decide(at: later) == .allow(probe: true))
    }

    @Test func slowCallsOpenItToo() {
        var breaker = breaker(CircuitBreakerSettings(window: .calls(4), minimumCalls: 4, failureRate: 100, slowCall: .seconds(2), slowCallRate: 75))
        for duration in [Duration.seconds(3), .seconds(3), .milliseconds(10)] {
            breaker.record(.success, duration: duration, probe: false, at: t0)
        }
        #expect(breaker.state == .closed)
        breaker.record(.success, duration: .seconds(2), probe: false, at: t0)
        #expect(breaker.state == .open)
    }

    @Test func aTimeWindowForgetsOldCalls() {
        var breaker = breaker(CircuitBreakerSettings(window: .time(.seconds(30)), minimumCalls: 4, failureRate: 50))
        breaker.record(.failure, duration: .zero, probe: false, at: t0)
        breaker.record(.failure, duration: .zero, probe: false, at: t0)
        let later = t0.addingTimeInterval(31)
        breaker.record(.success, duration: .zero, probe: false, at: later)
        breaker.record(.failure, duration: .zero, probe: false, at: later)
        // The first two fell out of the window: two calls, under the minimum.
        #expect(breaker.state == .closed)
        #expect(breaker.rates(at: later)?.calls == 2)
        breaker.record(.failure, duration: .zero, probe: false, at: later)
        breaker.record(.success, duration: .zero, probe: false, at: later)
        #expect(breaker.state == .open)
    }
}

/// The breaker's window keeps fixed counters, however many calls it sees: a count window is a ring, a time window
/// sixty buckets, and each call is counted in constant time.
@Suite(.timeLimit(.minutes(10))) struct CallWindowTests {
    @Test func aCountWindowKeepsTheLastCallsExactly() {
        var window = CallWindow(.calls(10))
        for i in 0..<1_000 { window.add(at: t0, failed: i % 4 == 0, slow: i % 5 == 0) }
        // Calls 990 to 999: 992 and 996 failed, 990 and 995 were slow.
        #expect(window.calls == 10 && window.failed == 2 && window.slow == 2)
        window.removeAll()
        #expect(window.calls == 0 && window.failed == 0)
    }

    @Test func aTimeWindowOfAnHourHoldsSixtyBucketsAndForgetsWhatLeavesIt() {
        var window = CallWindow(.time(.seconds(60)))
        for second in 0..<3_600 { window.add(at: t0.addingTimeInterval(Double(second)), failed: second % 2 == 0, slow: false) }
        // One call a second, a bucket a second: the last sixty seconds are in it.
        #expect(window.calls == 60 && window.failed == 30)
        window.expire(at: t0.addingTimeInterval(3_600 + 29))
        #expect(window.calls == 30)
        window.expire(at: t0.addingTimeInterval(7_200))
        #expect(window.calls == 0 && window.failed == 0 && window.slow == 0)
        window.add(at: t0.addingTimeInterval(7_200), failed: true, slow: true)
        #expect(window.calls == 1 && window.failed == 1 && window.slow == 1)
    }
}

@Suite(.timeLimit(.minutes(10))) struct TokenBucketTests {
    @Test func aBurstThenOneCallPerTokenAsTimePasses() {
        var bucket = TokenBucket(settings: RateLimitSettings(perSecond: 4, burst: 2))
        #expect(bucket.take(at: t0) == nil)
        #expect(bucket.take(at: t0) == nil)
        #expect(bucket.take(at: t0) == t0.addingTimeInterval(0.25))
        #expect(bucket.take(at: t0.addingTimeInterval(0.25)) == nil)
        // Ten idle seconds refill only up to the burst.
        let later = t0.addingTimeInterval(10)
        #expect(bucket.take(at: later) == nil)
        #expect(bucket.take(at: later) == nil)
        #expect(bucket.take(at: later) != nil)
    }
}

@Suite(.timeLimit(.minutes(10))) struct ParticipantDefinitionTests {
    private let withParticipants = #"""
        {
          "name": "pay", "version": 1,
          "participants": {
            "payments": {
              "circuitBreaker": { "failureRate": 40, "windowTime": "1m", "minimumCalls": 5, "openFor": "15s", "probes": 2, "slowCall": "3s", "slowCallRate": 80 },
              "bulkhead": { "maxInFlight": 4 },
              "rateLimit": { "perSecond": 20, "burst": 5 }
            },
            "inventory": {}
          },
          "steps": [
            { "name": "reserve", "participant": "inventory", "request": { "method": "POST", "url": "http://127.0.0.1:1/r" } },
            { "name": "charge", "participant": "payments", "request": { "method": "POST", "url": "http://127.0.0.1:1/c" } }
          ]
        }
        """#

    @Test func readsTheParticipantsAndWhichStepCallsWhich() throws {
        let definition = try saga(withParticipants)
        #expect(definition.steps.map(\.participant) == ["inventory", "payments"])
        let payments = try #require(definition.participants["payments"])
        #expect(payments.maxInFlight == 4)
        #expect(payments.rateLimit == RateLimitSettings(perSecond: 20, burst: 5))
        let breaker = try #require(payments.circuitBreaker)
        #expect(breaker.window == .time(.seconds(60)))
        #expect(breaker.failureRate == 40)
        #expect(breaker.minimumCalls == 5)
        #expect(breaker.openFor == .seconds(15))
        #expect(breaker.probes == 2)
        #expect(breaker.slowCall == .seconds(3))
        #expect(definition.participants["inventory"] == ParticipantSettings())
    }

    @Test func aStepNamingAnUndeclaredParticipantIsReportedWhereItIs() {
        let text = withParticipants.replacingOccurrences(of: #""participant": "payments""#, with: #""participant": "paymets""#)
        let found = problems(text)
        #expect(found.count == 1)
        #expect(found.first?.path?.description == "steps[1].participant")
        #expect(found.first?.message.contains("did you mean \"payments\"") == true)
    }

    @Test func badSettingsAreEachReportedWithTheirPath() {
        let text = withParticipants
            .replacingOccurrences(of: #""failureRate": 40"#, with: #""failureRate": 140"#)
            .replacingOccurrences(of: #""maxInFlight": 4"#, with: #""maxInFlight": 0"#)
            .replacingOccurrences(of: #""perSecond": 20"#, with: #""perSecond": -1"#)
            .replacingOccurrences(of: #""inventory": {}"#, with: #""inventory": {"baseUrl": "http://127.0.0.1:9"}"#)
        let paths = Set(problems(text).compactMap { $0.path?.description })
        #expect(
            paths == [
                "participants.payments.circuitBreaker.failureRate", "participants.payments.bulkhead.maxInFlight",
                "participants.payments.rateLimit.perSecond", "participants.inventory.baseUrl",
            ])
    }

    @Test func theServerFileTakesBaseURLsAndReportsItsProblemsWithLines() throws {
        let good = #"{"participants": {"payments": {"baseUrl": "http://127.0.0.1:9002", "circuitBreaker": {}}}}"#
        let parsed = try DefinitionParser.parseParticipants(Array(good.utf8), file: "participants.json")
        #expect(parsed["payments"]?.baseURL == "http://127.0.0.1:9002")
        #expect(parsed["payments"]?.circuitBreaker == CircuitBreakerSettings())

        let bad = "{\"participants\": {\n  \"payments\": {\"baseUrl\": \"ftp://x\", \"circuitBreakr\": {}}\n}}"
        #expect {
            try DefinitionParser.parseParticipants(Array(bad.utf8), file: "participants.json")
        } throws: { error in
            let lines = (error as? DefinitionError)?.lines ?? []
            return lines.count == 2 && lines.allSatisfy { $0.hasPrefix("participants.json:2:") }
                && lines.contains { $0.contains("did you mean \"circuitBreaker\"") }
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct ParticipantWaitTests {
    private let definition = #"""
        {
          "name": "pay", "version": 1,
          "participants": { "payments": {} },
          "steps": [
            { "name": "reserve", "request": { "method": "POST", "url": "http://127.0.0.1:1/r" },
              "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/r", "maxElapsed": "30s",
                                "retry": { "maxAttempts": 3, "initialInterval": "1s", "jitter": "none" } } },
            { "name": "charge", "participant": "payments",
              "request": { "method": "POST", "url": "http://127.0.0.1:1/c", "maxElapsed": "30s",
                           "retry": { "maxAttempts": 2, "initialInterval": "1s", "jitter": "none" } } }
          ]
        }
        """#

    /// The run with reserve done and charge's first attempt refused (a retry due 1 s later).
    private func chargeRefusedOnce(_ machine: SagaMachine) -> RunState {
        var state = machine.start(runID: "r1", at: t0).state
        state = machine.beginAttempt(state, step: 0, at: t0).state
        state = machine.finishAttempt(state, step: 0, outcome: .ok, duration: .zero, at: t0, jitterSample: 0).state
        state = machine.beginAttempt(state, step: 1, at: t0).state
        return machine.finishAttempt(state, step: 1, outcome: .unavailable, duration: .zero, at: t0, jitterSample: 0).state
    }

    @Test func waitingMovesTheAttemptWithoutCountingIt() throws {
        let machine = SagaMachine(saga: try saga(definition))
        let state = chargeRefusedOnce(machine)
        let now = t0.addingTimeInterval(1)
        let transition = machine.waitForParticipant(state, step: 1, participant: "payments", until: now.addingTimeInterval(12), at: now)
        let charge = transition.state.steps[1]
        #expect(charge.attempts == 1)
        #expect(charge.status == .running)
        #expect(charge.dueAt == now.addingTimeInterval(12))
        #expect(transition.events.map(\.kind) == [.participantWaiting])
        #expect(transition.events[0].message == "charge waits: payments circuit open, next probe in 12s; the attempt is not sent and not counted")
        #expect(transition.changedSteps == [1])
        // When the circuit lets it through, the attempt is the second of two, and says it resumes.
        let resumed = machine.beginAttempt(transition.state, step: 1, at: now.addingTimeInterval(12), resumingFrom: "payments", probe: true)
        #expect(resumed.events.map(\.kind) == [.participantResumed, .attemptStarted])
        #expect(resumed.state.steps[1].attempts == 2)
    }

    @Test func aForwardStepWhoseMaxElapsedWouldPassFailsForGoodAndTheRunCompensates() throws {
        let machine = SagaMachine(saga: try saga(definition))
        let state = chargeRefusedOnce(machine)
        let now = t0.addingTimeInterval(1)
        // The probe would come 40 s after the first attempt, past maxElapsed (30 s).
        let transition = machine.waitForParticipant(state, step: 1, participant: "payments", until: t0.addingTimeInterval(40), at: now)
        #expect(transition.state.steps[1].status == .failed)
        #expect(transition.state.steps[1].attempts == 1)
        #expect(transition.state.status == .compensating)
        #expect(transition.state.steps[0].status == .compensating)
        #expect(transition.events.map(\.kind).starts(with: [.participantWaiting, .stepFailed, .compensationStarted]))
        #expect(transition.state.failure?.reason.contains("maxElapsed 30s would pass before its next probe") == true)
    }

    @Test func aCompensationWaitsWhateverItsMaxElapsed() throws {
        let machine = SagaMachine(saga: try saga(definition))
        var state = chargeRefusedOnce(machine)
        // The charge's second attempt is refused for good: reserve is compensated; its compensation waits an hour.
        state = machine.beginAttempt(state, step: 1, at: t0.addingTimeInterval(1)).state
        state = machine.finishAttempt(state, step: 1, outcome: .declined, duration: .zero, at: t0.addingTimeInterval(1), jitterSample: 0).state
        #expect(state.steps[0].status == .compensating)
        // Its first attempt is refused; the retry would come in a second, but the circuit is open for an hour,
        // far past the compensation's maxElapsed (30 s): it waits all the same.
        state = machine.beginAttempt(state, step: 0, at: t0.addingTimeInterval(1)).state
        state = machine.finishAttempt(state, step: 0, outcome: .unavailable, duration: .zero, at: t0.addingTimeInterval(1), jitterSample: 0).state
        let later = t0.addingTimeInterval(3600)
        let transition = machine.waitForParticipant(state, step: 0, participant: "inventory", until: later, at: t0.addingTimeInterval(2))
        #expect(transition.state.status == .compensating)
        #expect(transition.state.steps[0].status == .compensating)
        #expect(transition.state.steps[0].dueAt == later)
        #expect(transition.state.steps[0].compensationAttempts == 1)
        #expect(transition.events[0].message.hasPrefix("reserve (compensation) waits: inventory circuit open"))
    }

    @Test func aStepAlreadyWaitingForAGateIsNoReasonToWake() throws {
        let machine = SagaMachine(saga: try saga(definition))
        var state = machine.start(runID: "r1", at: t0).state
        #expect(machine.nextWakeAt(state) == t0)
        // reserve is due now but queued at its participant: the driver sleeps until something else is due.
        #expect(machine.nextWakeAt(state, excluding: [0]) == nil)
        state.deadlineAt = t0.addingTimeInterval(60)
        #expect(machine.nextWakeAt(state, excluding: [0]) == t0.addingTimeInterval(60))
    }
}

import Testing
@testable import SkaldCore
import SkaldTestSupport

@Suite(.timeLimit(.minutes(10))) struct BackoffTests {
    let policy = RetryPolicy(maxAttempts: 6, initialInterval: .milliseconds(200), backoffCoefficient: 2, maxInterval: .seconds(1), jitter: .none)

    @Test func growsExponentiallyUpToTheCap() {
        let delays = (1...5).map { policy.delay(afterAttempt: $0, jitterSample: 0.5).milliseconds }
        #expect(delays == [200, 400, 800, 1000, 1000])
    }

    @Test func fullJitterScalesByTheSample() {
        var jittered = policy
        jittered.jitter = .full
        #expect(jittered.delay(afterAttempt: 3, jitterSample: 0).milliseconds == 0)
        #expect(jittered.delay(afterAttempt: 3, jitterSample: 0.25).milliseconds == 200)
        #expect(jittered.delay(afterAttempt: 3, jitterSample: 1).milliseconds == 800)
        #expect(jittered.delayBounds(afterAttempt: 3) == Duration.zero...Duration.milliseconds(800))
    }

    @Test func retryAfterIsAFloorCappedByMaxInterval() {
        #expect(policy.delay(afterAttempt: 1, retryAfter: .milliseconds(700), jitterSample: 0).milliseconds == 700)
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(30), jitterSample: 0).milliseconds == 1000)
        #expect(policy.delay(afterAttempt: 3, retryAfter: .milliseconds(100), jitterSample: 0).milliseconds == 800)
    }

    @Test func hugeAttemptNumbersDoNotOverflow() {
        #expect(policy.delay(afterAttempt: 10_000, jitterSample: 1) == .seconds(1))
    }

    @Test(arguments: [(200, StatusClassification.success), (204, .success), (408, .retryable), (425, .retryable), (429, .retryable),
        (500, .retryable), (503, .retryable), (400, .permanent), (402, .permanent), (404, .permanent), (302, .permanent), (422, .permanent)])
    func classifiesStatuses(status: Int, expected: StatusClassification) {
        #expect(StatusClassification(status: status) == expected)
    }
}

import Foundation
import Testing
import SkaldTestSupport

/// A few cycles of `skald torture`, so that the harness itself is exercised by `swift test` (CI also runs a
/// longer one, and the README reports a run of 1,000 kills).
@Suite(.timeLimit(.minutes(10))) struct TortureTests {
    @Test func aShortTortureRunFindsNoViolation() async throws {
        let folder = try temporaryFolder()
        let result = try await SkaldProcess.run(["torture", "--cycles", "3", "--runs-per-cycle", "6", "--seed", "7"], in: folder)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let summary = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("torture: ") })
        #expect(summary.contains("cycles=3 runs=18 kills=3"))
        #expect(summary.contains("violations=0"))
    }
}

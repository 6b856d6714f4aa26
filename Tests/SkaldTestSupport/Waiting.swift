import Foundation
import Testing

/// The repository's root folder (for `Sagas/`, `docs/`, `scripts/`).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A condition that did not hold within its limit.
public struct TimedOut: Error, CustomStringConvertible {
    public var what: String

    public init(what: String) { self.what = what }

    public var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` until it holds, checking every 10 ms; records an issue and throws `TimedOut` if it does not hold
/// within `limit`. The limit is a safety net against a hung test, not a timing assertion: tests wait on conditions,
/// never on sleeps. The one way tests poll.
public func waitFor(
    _ what: String, limit: Duration = .seconds(120), fileID: String = #fileID, filePath: String = #filePath, line: Int = #line,
    column: Int = #column, _ condition: @Sendable () async throws -> Bool
) async throws {
    let sourceLocation = SourceLocation(fileID: fileID, filePath: filePath, line: line, column: column)
    let deadline = ContinuousClock.now + limit
    while !(try await condition()) {
        if ContinuousClock.now > deadline {
            Issue.record("timed out waiting for \(what) (\(limit))", sourceLocation: sourceLocation)
            throw TimedOut(what: what)
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// A fresh folder for one test.
public func temporaryFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("skald-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

import Foundation
import Testing

/// What some suites need beyond Swift and SQLite. CI has all of them (`.ci/run` installs them), and there a missing
/// one fails its tests. A developer without one leaves those tests out with `SKALD_TEST_SKIP`, a comma-separated
/// list of these names (`SKALD_TEST_SKIP=postgres,chromium swift test`); they are then reported as skipped, never as
/// passed.
public enum TestPart: String, CaseIterable, Sendable {
    /// Debian's `postgresql` (the tests start a throwaway cluster of their own).
    case postgres
    /// Debian's `chromium`, driven through Python's `playwright`.
    case chromium
    /// `python3`, with `jsonschema` and `playwright`.
    case python
    /// Root, to mount a small tmpfs (the storage-fault test).
    case root

    /// The parts the developer asked to leave out.
    public static let skipped: Set<TestPart> = {
        let names = (ProcessInfo.processInfo.environment["SKALD_TEST_SKIP"] ?? "").split(separator: ",")
        return Set(names.compactMap { TestPart(rawValue: $0.trimmingCharacters(in: .whitespaces).lowercased()) })
    }()

    public var isAvailable: Bool { !Self.skipped.contains(self) }
}

extension Tag {
    /// Needs PostgreSQL (`TestPart.postgres`).
    @Tag public static var postgres: Self
    /// Needs Chromium (`TestPart.chromium`).
    @Tag public static var chromium: Self
    /// Needs Python and its packages (`TestPart.python`).
    @Tag public static var python: Self
    /// Needs root (`TestPart.root`).
    @Tag public static var root: Self
}

extension Trait where Self == ConditionTrait {
    /// On a suite or test that needs these parts (tag it with them too): it runs unless the developer named one of
    /// them in `SKALD_TEST_SKIP`, and is then reported as skipped.
    public static func needs(_ parts: TestPart...) -> Self {
        let missing = parts.filter { !$0.isAvailable }.map(\.rawValue)
        return .enabled(if: missing.isEmpty, "needs \(parts.map(\.rawValue).joined(separator: " and ")): left out with SKALD_TEST_SKIP")
    }
}

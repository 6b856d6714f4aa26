import Foundation
import SkaldDemo
import SkaldEngine
import Testing
import SkaldTestSupport

/// The stores the engine runs on. Engine tests run against each: the in-memory store, a real SQLite file and a real
/// PostgreSQL database (on the throwaway cluster started once for the test process), so the engine's promises are
/// checked on what Skald ships, not only on the test double.
enum EngineStore: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// The stores this test run covers: all three, unless the developer left PostgreSQL out (`SKALD_TEST_SKIP=postgres`).
    static var tested: [EngineStore] { allCases.filter { $0 != .postgres || TestPart.postgres.isAvailable } }

    /// A new, empty store of this kind for `body`, closed afterwards.
    func with<T: Sendable>(_ body: (any SagaStore) async throws -> T) async throws -> T {
        switch self {
        case .memory: try await body(InMemoryStore())
        case .sqlite: try await DatabaseKind.withStore(try await DatabaseKind.sqlite.newDatabase(), body)
        case .postgres: try await DatabaseKind.withStore(try await DatabaseKind.postgres.newDatabase(), body)
        }
    }
}

import Foundation
import SkaldDemo
import SkaldEngine
import SkaldPostgres
import SkaldSQLite
import Testing

/// The stores the engine runs on. Engine tests run against each: the in-memory store, a real SQLite file and a real
/// PostgreSQL database (on the throwaway cluster started once for the test process), so the engine's promises are
/// checked on what Skald ships, not only on the test double.
enum EngineStore: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// A new, empty store of this kind for `body`, closed afterwards.
    func with<T: Sendable>(_ body: (any SagaStore) async throws -> T) async throws -> T {
        switch self {
        case .memory:
            return try await body(InMemoryStore())
        case .sqlite:
            return try await body(try SQLiteStore(path: try await DatabaseKind.sqlite.newDatabase()))
        case .postgres:
            let store = try await PostgresStore.open(try PostgresLocation(url: try await DatabaseKind.postgres.newDatabase()))
            do {
                let result = try await body(store)
                await store.shutdown()
                return result
            } catch {
                await store.shutdown()
                throw error
            }
        }
    }
}

import Foundation
import SkaldEngine
import SkaldPostgres
import SkaldSQLite

/// Opens a database of either kind (a SQLite path or a PostgreSQL URL) with Skald's own store, runs `body`, and
/// closes it: how the tests look at what a `skald` process stored.
func withStore<T: Sendable>(_ db: String, _ body: (any SagaStore) async throws -> T) async throws -> T {
    guard PostgresLocation.isURL(db) else { return try await body(try SQLiteStore(path: db)) }
    let store = try await PostgresStore.open(try PostgresLocation(url: db))
    do {
        let result = try await body(store)
        await store.shutdown()
        return result
    } catch {
        await store.shutdown()
        throw error
    }
}

/// The runs in a database of either kind.
func listRuns(_ db: String, _ query: RunQuery) async throws -> [RunSummary] {
    try await withStore(db) { try await $0.listRuns(query).runs }
}

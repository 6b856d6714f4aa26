import SkaldDemo
import SkaldEngine
import SkaldTestSupport

/// What a `skald` process stored, read with Skald's own store (a SQLite path or a PostgreSQL URL).
func withStore<T: Sendable>(_ db: String, _ body: (any SagaStore) async throws -> T) async throws -> T {
    try await DatabaseKind.withStore(db, body)
}

/// The runs in a database of either kind.
func listRuns(_ db: String, _ query: RunQuery) async throws -> [RunSummary] {
    try await withStore(db) { try await $0.listRuns(query).runs }
}

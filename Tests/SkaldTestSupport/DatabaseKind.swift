import Foundation
import SkaldDemo
import SkaldEngine
import SkaldPostgres
import SkaldSQLite

/// The two kinds of database Skald runs on, for tests that run against each.
public enum DatabaseKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }

    /// A new, empty database of this kind: a file path in a new temporary folder, or the URL of a new database on
    /// the process's shared PostgreSQL cluster.
    public func newDatabase() async throws -> String {
        switch self {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("skald-db-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            return folder.appendingPathComponent("skald.sqlite").path
        case .postgres:
            return try await PostgresCluster.shared().createDatabase("t_\(UUID().uuidString.prefix(8).lowercased())")
        }
    }
}

extension DatabaseKind {
    /// Opens a database of either kind (a SQLite path or a PostgreSQL URL) with Skald's own store, runs `body`,
    /// and closes it: how tests look at what a `skald` process stored, or reopen it as a restarted process would.
    public static func withStore<T: Sendable>(_ db: String, _ body: (any SagaStore) async throws -> T) async throws -> T {
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
}

extension DatabaseKind {
    /// The kinds this test run covers: both, unless the developer left PostgreSQL out (`SKALD_TEST_SKIP=postgres`).
    public static var tested: [DatabaseKind] {
        allCases.filter { $0 != .postgres || TestPart.postgres.isAvailable }
    }
}

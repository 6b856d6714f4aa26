import Foundation
import SkaldEngine
import SkaldPostgres
import SkaldSQLite

/// Where the runs are kept and how: a SQLite file, or a PostgreSQL database shared by several nodes.
public struct DatabaseSettings: Sendable {
    /// A SQLite file's path, or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
    public var location: String
    /// SQLite: what a commit survives.
    public var durability: Durability = .process
    /// SQLite: how long a write waits for another process's write lock.
    public var busyTimeout: Duration = SQLiteStore.defaultBusyTimeout
    /// PostgreSQL: the most connections this process keeps open.
    public var connections = 16
    /// PostgreSQL: who runs the connection pool. `SkaldService` runs it (`.caller`) for a database it is given;
    /// a command that opens, uses and closes one leaves it to the store.
    public var pool: PostgresStore.PoolRunner = .store
    public var metrics = StoreMetrics()

    public init(location: String) {
        self.location = location
    }

    public var isPostgres: Bool { PostgresLocation.isURL(location) }
}

/// Opens (creating and migrating as needed) the database `settings` names: the one way every command and the
/// server open one.
/// - Throws: `SQLiteStoreError` or `PostgresStoreError`, saying which database and what to do.
public func openDatabase(_ settings: DatabaseSettings) async throws -> any SkaldDatabase {
    if settings.isPostgres {
        return try await PostgresStore.open(
            try PostgresLocation(url: settings.location), maximumConnections: settings.connections, metrics: settings.metrics,
            pool: settings.pool)
    }
    return try SQLiteStore(path: settings.location, durability: settings.durability, busyTimeout: settings.busyTimeout, metrics: settings.metrics)
}

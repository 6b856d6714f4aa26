import Foundation
import PostgresNIO

/// One statement's totals in `pg_stat_statements`, for the benchmark's account of where the server's time goes.
public struct StatementStatistic: Sendable {
    /// The statement's text as the extension normalizes it (constants replaced by `$n`).
    public var query: String
    /// How many times it ran.
    public var calls: Int
    /// The server's time executing it, in milliseconds (planning and the protocol's own work not included).
    public var totalMilliseconds: Double
    /// Rows it read or wrote.
    public var rows: Int
    /// Sent by the client (false: run inside another statement, as a foreign key's check is).
    public var topLevel: Bool
}

extension PostgresStore {
    /// Installs `pg_stat_statements` in this database (the server must load it: `shared_preload_libraries`) and
    /// forgets what it counted so far.
    public func resetStatementStatistics() async throws {
        try await execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        try await execute("SELECT pg_stat_statements_reset()")
    }

    /// The statements run on this database since `resetStatementStatistics()`, the costliest first.
    public func statementStatistics() async throws -> [StatementStatistic] {
        let logger = logger
        return try await reading { db in
            try await db.query(
                """
                SELECT query, calls, total_exec_time, rows, toplevel FROM pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                ORDER BY total_exec_time DESC
                """, logger: logger
            ).collect().map { row in
                let (query, calls, total, rows, topLevel) = try row.decode((String, Int, Double, Int, Bool).self)
                return StatementStatistic(query: query, calls: calls, totalMilliseconds: total, rows: rows, topLevel: topLevel)
            }
        }
    }
}

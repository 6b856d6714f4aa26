import Foundation
import Logging
import PostgresNIO
import SkaldEngine
import _ConnectionPoolModule

/// The server's errors in Skald's terms (`StoreError` kinds by SQLSTATE, `StoreUnavailable`), and the transactions that map them.
extension PostgresStore {
    // MARK: - Errors

    /// A failure in words: the server's message and SQLSTATE, or what happened to the connection. Never the password.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PostgresTransactionError {
            if let inner = error.closureError ?? error.beginError ?? error.commitError { return describe(inner) }
        }
        if let error = error as? PostgresStoreError { return error.message }
        if let error = error as? StoreError { return error.message }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            }
            switch error.code {
            case .connectionError: return "the connection could not be made or broke\(error.underlying.map { " (\($0))" } ?? "")"
            case .serverClosedConnection: return "the server closed the connection"
            case .poolClosed: return "the store was shut down"
            default: return "\(error.code)"
            }
        }
        return "\(error)"
    }

    /// Our own errors as they are; a server that cannot be reached as `StoreUnavailable` (so the API answers 503 and
    /// `/health` says degraded); the server's refusals as a `StoreError` with its words.
    func mapped(_ error: any Error) -> any Error { Self.mapped(error, location: location) }

    static func mapped(_ error: any Error, location: PostgresLocation) -> any Error {
        var error = error
        if let wrapped = error as? PostgresTransactionError, let inner = wrapped.closureError ?? wrapped.beginError ?? wrapped.commitError {
            error = inner
        }
        let unreachable = "the PostgreSQL server at \(location.host):\(location.port) cannot be reached or closed the connection; check that it runs"
        if let psql = error as? PSQLError {
            guard let state = psql.serverInfo?[.sqlState] else {
                return StoreUnavailable(reason: unreachable, detail: Self.describe(psql))
            }
            switch state {
            case "53100":
                return StoreUnavailable(reason: "the disk holding the PostgreSQL database is full; free space on it", detail: Self.describe(psql))
            case "57P01", "57P02", "57P03", "08000", "08003", "08006":
                return StoreUnavailable(
                    reason: "the PostgreSQL server at \(location.host):\(location.port) is shutting down or restarting", detail: Self.describe(psql))
            case "53300":
                return StoreUnavailable(
                    reason: "the PostgreSQL server has no connection left for this node (max_connections); raise max_connections, or lower the nodes' --concurrency (each node keeps up to 64 connections)",
                    detail: Self.describe(psql))
            case "25006":
                return StoreUnavailable(reason: "the PostgreSQL server is read-only (a standby?); point --db at the primary", detail: Self.describe(psql))
            case SQLState.notOwner:
                return StoreError(.notOwner, "this node does not hold the run it writes (another node claimed it)")
            case SQLState.attemptNotInFlight:
                return StoreError(.attemptNotInFlight, "the attempt is not stored as in flight")
            case SQLState.uniqueViolation:
                return StoreError(.uniqueViolation, "PostgreSQL: \(Self.describe(psql))")
            default:
                return StoreError(.refused, "PostgreSQL: \(Self.describe(psql))")
            }
        }
        // The pool's own errors (it could not connect, or was shut down) name no server state.
        if error is ConnectionPoolError {
            return StoreUnavailable(reason: unreachable, detail: "\(error)")
        }
        return error
    }

    /// One transaction, committed when `body` returns, rolled back when it throws.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = logger
        await poolRunning.wait()
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch {
            throw mapped(error)
        }
    }

    /// Reads outside a transaction (each query sees what is committed).
    func reading<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        await poolRunning.wait()
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch {
            throw mapped(error)
        }
    }
}

import Foundation

/// What an operator's tools do to a database besides running sagas: name it, measure it, delete old runs, see which
/// nodes serve it, and close it. Both stores implement it, so no command asks which store it has.
public protocol StoreMaintenance: Sendable {
    /// The file's path, or the URL with its password masked.
    var name: String { get }
    /// On a database shared by several nodes, this process's node id.
    var nodeID: String? { get }
    /// Takes what lets this process drive runs: on a SQLite file, the one-engine lock next to it; on a shared
    /// database, nothing (each node drives the runs it claims). Taking it again while held does nothing.
    /// - Throws: when another process drives the database and only one may.
    func takeEngineLock() throws
    /// Deletes runs that ended (completed, compensated, abandoned) before `cutoff`, `batchSize` per transaction.
    func prune(finishedBefore cutoff: Date, batchSize: Int) async throws -> Int
    /// The database's size on disk in bytes (a SQLite file with its write-ahead log).
    func sizeInBytes() async throws -> Int
    /// The nodes serving a shared database now; none for a SQLite file (its engine lock keeps a second engine out).
    func liveNodes() async throws -> [String]
    /// Runs what the database needs while it is used (PostgreSQL's connection pool, when the caller runs it) until
    /// the task is cancelled or sees a graceful shutdown; returns at once when there is nothing to run.
    /// `SkaldService` runs it as a service of its own that a graceful shutdown reaches after the engine drained.
    func serve() async
    /// Releases the engine lock and closes connections; the store cannot be used afterwards.
    func close() async
}

extension StoreMaintenance {
    public func serve() async {}
}

/// A database as the commands and the server use it: runs, and their upkeep.
public typealias SkaldDatabase = SagaStore & StoreMaintenance

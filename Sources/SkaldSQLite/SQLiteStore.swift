import Foundation
import GRDB
import SkaldCore
import SkaldEngine
import Synchronization

/// How much a commit survives.
public enum Durability: String, Sendable, CaseIterable {
    /// WAL with synchronous=NORMAL: a committed transition survives the process being killed (`kill -9`).
    case process
    /// WAL with synchronous=FULL: a committed transition also survives power loss, at the cost of an fsync per commit.
    case full
}

/// The SQLite store: one file, WAL mode, one transaction per state change.
public final class SQLiteStore: SagaStore {
    public let path: String
    let pool: DatabasePool
    /// Run transitions go through here: many runs' transitions share one transaction.
    let committer: GroupCommitter
    /// Definitions known to be stored, so starting a run does not write its definition again.
    private let storedDefinitions = Mutex<Set<String>>([])
    /// The one-engine lock, once taken (`takeEngineLock`); released by `close`.
    private let engineLock = Mutex<EngineLock?>(nil)

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    /// - Throws: `SQLiteStoreError` naming the path and what to do when it cannot be opened or is newer than this Skald.
    /// How long a write waits for another process's write lock by default.
    public static let defaultBusyTimeout: Duration = .seconds(10)

    public init(
        path: String, durability: Durability = .process, busyTimeout: Duration = defaultBusyTimeout, metrics: StoreMetrics = StoreMetrics()
    ) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout.seconds)
        configuration.journalMode = .wal
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
            throw SQLiteStoreError.cannotOpen(path: path, reason: "the directory \(directory) does not exist")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw SQLiteStoreError.cannotOpen(path: path, reason: Self.describe(error))
        }
        // GRDB opens WAL databases with synchronous=NORMAL on the writer connection; `full` raises it.
        if durability == .full {
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        }
        let migrator = Schema.migrator
        let superseded = try pool.read { db in try migrator.hasBeenSuperseded(db) }
        if superseded {
            let applied = try pool.read { db in try migrator.appliedIdentifiers(db) }
            let unknown = applied.subtracting(migrator.migrations).sorted()
            throw SQLiteStoreError.newerSchema(path: path, unknownMigrations: unknown)
        }
        do {
            try migrator.migrate(pool)
        } catch {
            throw SQLiteStoreError.cannotOpen(path: path, reason: Self.describe(error))
        }
        committer = GroupCommitter(pool: pool, metrics: metrics)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_CANTOPEN: return "SQLite cannot open the file (check that the directory exists and is writable)"
            case .SQLITE_READONLY: return "the file or its directory is read-only"
            case .SQLITE_PERM, .SQLITE_AUTH: return "permission denied"
            case .SQLITE_NOTADB: return "the file is not a SQLite database"
            case .SQLITE_CORRUPT: return "the database file is corrupt"
            case .SQLITE_FULL: return "the disk is full"
            default: return error.message ?? "\(error)"
            }
        }
        return "\(error)"
    }

    // MARK: - Writes

    public func registerDefinition(_ definition: SagaDefinition, at: Date) async throws -> Registration {
        do {
            return try await register(definition, at: at)
        } catch {
            throw Self.unavailable(error, path: path) ?? error
        }
    }

    private func register(_ definition: SagaDefinition, at: Date) async throws -> Registration {
        try await pool.write { db in
            if let existing = try String.fetchOne(
                db, sql: "SELECT hash FROM definition WHERE name = ? AND version = ? AND registered = 1",
                arguments: [definition.name, definition.version])
            {
                return existing == definition.contentHash ? .alreadyRegistered : .conflict(existingHash: existing)
            }
            try db.execute(
                sql: """
                    INSERT INTO definition (hash, name, version, document, created_at, registered) VALUES (?, ?, ?, ?, ?, 1)
                    ON CONFLICT (hash) DO UPDATE SET registered = 1
                    """,
                arguments: [definition.contentHash, definition.name, definition.version, definition.documentText, at.timeIntervalSince1970])
            return .registered
        }
    }

    public func definitions() async throws -> [StoredDefinition] {
        try await pool.read { db in
            try DefinitionRow.fetchAll(db, sql: "SELECT * FROM definition WHERE registered = 1 ORDER BY name, version").map { try $0.definition() }
        }
    }

    public func definition(name: String, version: Int?) async throws -> StoredDefinition? {
        try await pool.read { db in
            let row: Row?
            if let version {
                row = try Row.fetchOne(
                    db, sql: "SELECT * FROM definition WHERE registered = 1 AND name = ? AND version = ?", arguments: [name, version])
            } else {
                row = try Row.fetchOne(
                    db, sql: "SELECT * FROM definition WHERE registered = 1 AND name = ? ORDER BY version DESC LIMIT 1", arguments: [name])
            }
            return try row.map { try DefinitionRow(row: $0).definition() }
        }
    }

    /// A change through the group committer, with SQLite's errors about the file itself (full, read-only,
    /// locked, failing) turned into `StoreUnavailable`, which says what to do about them.
    func write<T: Sendable>(_ change: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await committer.write(change)
        } catch {
            throw Self.unavailable(error, path: path) ?? error
        }
    }

    /// `StoreUnavailable` for errors that come from the file or the machine rather than from the change.
    static func unavailable(_ error: any Error, path: String) -> StoreUnavailable? {
        guard let error = error as? DatabaseError else { return nil }
        let reason: String
        switch error.resultCode {
        case .SQLITE_FULL: reason = "the disk holding the database is full; free space on it"
        case .SQLITE_READONLY: reason = "the database file or its folder has become read-only; make it writable again"
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            reason = "another process holds the database's write lock (a sqlite3 shell or a backup tool with a transaction open); end it"
        case .SQLITE_IOERR: reason = "the operating system failed to read or write the database (a disk or file-system error); check the disk"
        case .SQLITE_CANTOPEN: reason = "the database file can no longer be opened; check that it and its folder still exist"
        default: return nil
        }
        return StoreUnavailable(reason: reason, detail: "\(path): \(error.message ?? "\(error)")")
    }

    public func recordTransition(runID: String, at: Date, transition: SagaMachine.Transition) async throws {
        try await write { db in try Self.apply(transition, runID: runID, at: at, db: db) }
    }

    public func createRun(_ run: NewRun, transition: SagaMachine.Transition) async throws -> CreatedRun {
        let definitionStored = storedDefinitions.withLock { $0.contains(run.definition.contentHash) }
        let created = try await write { db in
            if let key = run.idempotencyKey,
                let existing = try String.fetchOne(db, sql: "SELECT id FROM run WHERE idempotency_key = ?", arguments: [key])
            {
                guard let run = try Self.loadRun(id: existing, db: db) else {
                    throw StoreError(.unreadableRow, "run \(existing) holds the idempotency key \(key) but cannot be read back (its definition is missing)")
                }
                return CreatedRun.existing(run)
            }
            let definition = run.definition
            if !definitionStored {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO definition (hash, name, version, document, created_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [definition.contentHash, definition.name, definition.version, definition.documentText, run.createdAt.timeIntervalSince1970])
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO run (id, definition_hash, saga_name, saga_version, status, input, created_at, updated_at, idempotency_key,
                        deadline_at, trace_parent, trace_state)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(
                arguments: [
                    run.id, definition.contentHash, definition.name, definition.version, transition.state.status.rawValue,
                    run.input.jsonText, run.createdAt.timeIntervalSince1970, run.createdAt.timeIntervalSince1970, run.idempotencyKey,
                    transition.state.deadlineAt?.timeIntervalSince1970, run.trace?.parent, run.trace?.state,
                ])
            let insertStep = try db.cachedStatement(sql: "INSERT INTO step (run_id, position, name, status, due_at) VALUES (?, ?, ?, ?, ?)")
            for (position, step) in transition.state.steps.enumerated() {
                try insertStep.execute(arguments: [run.id, position, step.name, step.status.rawValue, step.dueAt?.timeIntervalSince1970])
            }
            try Self.append(transition.events, runID: run.id, db: db)
            return CreatedRun.created
        }
        // Only once committed: a rolled-back batch must not leave the definition marked as stored.
        if !definitionStored { storedDefinitions.withLock { _ = $0.insert(run.definition.contentHash) } }
        return created
    }

    public func recordAttemptStarted(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws {
        try await write { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO attempt (run_id, position, phase, number, step_name, started_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """
            ).execute(
                arguments: [attempt.runID, attempt.step, attempt.phase.rawValue, attempt.number, attempt.stepName, at.timeIntervalSince1970])
            try Self.apply(transition, runID: attempt.runID, at: at, db: db)
        }
    }

    public func recordAttemptResent(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE attempt SET sends = sends + 1, started_at = ?
                    WHERE run_id = ? AND position = ? AND phase = ? AND number = ? AND finished_at IS NULL
                    """,
                arguments: [at.timeIntervalSince1970, attempt.runID, attempt.step, attempt.phase.rawValue, attempt.number])
            guard db.changesCount == 1 else {
                throw StoreError.notInFlight(attempt)
            }
            try Self.apply(transition, runID: attempt.runID, at: at, db: db)
        }
    }

    public func recordAttemptFinished(_ result: AttemptResult, transition: SagaMachine.Transition) async throws {
        try await write { db in
            var record = AttemptRecord(key: result.attempt, startedAt: result.finishedAt)
            record.finish(with: result)
            let attempt = result.attempt
            try db.cachedStatement(
                sql: """
                    UPDATE attempt SET finished_at = ?, succeeded = ?, http_status = ?, error = ?, duration_ms = ?
                    WHERE run_id = ? AND position = ? AND phase = ? AND number = ? AND finished_at IS NULL
                    """
            ).execute(
                arguments: [
                    result.finishedAt.timeIntervalSince1970, record.succeeded, record.httpStatus, record.error, record.durationMs,
                    attempt.runID, attempt.step, attempt.phase.rawValue, attempt.number,
                ])
            guard db.changesCount == 1 else {
                throw StoreError.notInFlight(attempt)
            }
            try Self.apply(transition, runID: attempt.runID, at: result.finishedAt, db: db)
        }
    }

    /// Writes the run row and the step rows the transition changed (every one when it does not say), and appends
    /// the events.
    static func apply(_ transition: SagaMachine.Transition, runID: String, at: Date, db: Database) throws {
        let state = transition.state
        try db.cachedStatement(
            sql: """
                UPDATE run SET status = ?, failure_step = ?, failure_reason = ?, compensation_failure_step = ?,
                    compensation_failure_reason = ?, stuck_step = ?, stuck_reason = ?, deadline_at = ?, updated_at = ?, parked_until = NULL
                WHERE id = ?
                """
        ).execute(
            arguments: [
                state.status.rawValue, state.failure?.step, state.failure?.reason, state.compensationFailure?.step,
                state.compensationFailure?.reason, state.stuck?.step, state.stuck?.reason, state.deadlineAt?.timeIntervalSince1970,
                at.timeIntervalSince1970, runID,
            ])
        guard db.changesCount == 1 else { throw StoreError.unknownRun(runID) }
        let statement = try db.cachedStatement(
            sql: """
                UPDATE step SET status = ?, attempts = ?, compensation_attempts = ?, compensation_attempts_base = ?, attempts_base = ?,
                    first_attempt_at = ?, compensation_first_attempt_at = ?, due_at = ?, response_status = ?, response_body = ?, last_error = ?,
                    outcome_unknown = ?, resolved_by = ?, resolved_note = ?, resolved_at = ?, wait = ?
                WHERE run_id = ? AND position = ?
                """)
        let registerToken = try db.cachedStatement(
            sql: "INSERT OR IGNORE INTO callback (token, run_id, position, attempt, created_at) VALUES (?, ?, ?, ?, ?)")
        // A forEach step's items are new rows: inserted by the transition that works them out, then updated.
        if let added = state.steps.indices.last, state.steps[added].element != nil {
            let insertItem = try db.cachedStatement(sql: "INSERT OR IGNORE INTO step (run_id, position, name, status) VALUES (?, ?, ?, ?)")
            for position in (transition.changedSteps ?? Array(state.steps.indices)) where state.steps[position].element != nil {
                try insertItem.execute(arguments: [runID, position, state.steps[position].name, state.steps[position].status.rawValue])
            }
        }
        for position in transition.changedSteps ?? Array(state.steps.indices) {
            let step = state.steps[position]
            if let (token, attempt) = StepRow.callbackToken(of: step) {
                try registerToken.execute(arguments: [token, runID, position, attempt, at.timeIntervalSince1970])
            }
            try statement.execute(arguments: [
                step.status.rawValue, step.attempts, step.compensationAttempts, step.compensationAttemptsBase, step.attemptsBase,
                step.firstAttemptAt?.timeIntervalSince1970, step.compensationFirstAttemptAt?.timeIntervalSince1970,
                step.dueAt?.timeIntervalSince1970,
                step.response?.status, step.response?.body.jsonText, step.lastError, step.outcomeUnknown,
                step.resolution?.by, step.resolution?.note, step.resolution?.at.timeIntervalSince1970, StepRow.text(of: step.wait), runID,
                position,
            ])
        }
        try append(transition.events, runID: runID, db: db)
    }

    static func append(_ events: [RunEvent], runID: String, db: Database) throws {
        let statement = try db.cachedStatement(
            sql: "INSERT INTO event (run_id, at, kind, step, phase, attempt, message, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        for event in events {
            try statement.execute(arguments: [
                runID, event.at.timeIntervalSince1970, event.kind.rawValue, event.step, event.phase?.rawValue, event.attempt,
                event.message, event.data.jsonText,
            ])
        }
    }

    public func importRuns(events: [RunEvent], from next: @escaping @Sendable () throws -> ExportedRun?) async throws -> ImportedRuns {
        // Its own transaction, not the group committer's: a batch that fails is applied again change by change there,
        // and this change reads its runs as it goes, once.
        do {
            return try await pool.write { db in
                var tally = ImportedRuns()
                while let exported = try next() {
                    tally.add(try Self.importRun(exported, events: events, db), of: exported.run)
                }
                return tally
            }
        } catch {
            throw Self.unavailable(error, path: path) ?? error
        }
    }

    static func importRun(_ exported: ExportedRun, events: [RunEvent], _ db: Database) throws -> ImportedRun {
        let run = exported.run
        let state = run.state
        do {
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM run WHERE id = ?", arguments: [run.id]) == true { return .alreadyPresent }
            if let key = run.idempotencyKey, let holder = try String.fetchOne(db, sql: "SELECT id FROM run WHERE idempotency_key = ?", arguments: [key]) {
                throw StoreError.idempotencyKeyTaken(key, by: holder, importing: run.id)
            }
            try db.execute(
                sql: "INSERT OR IGNORE INTO definition (hash, name, version, document, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [run.definitionHash, run.sagaName, run.sagaVersion, run.definitionDocument.jsonText, run.createdAt.timeIntervalSince1970])
            try db.execute(
                sql: """
                    INSERT INTO run (id, definition_hash, saga_name, saga_version, status, input, created_at, updated_at, idempotency_key,
                        trace_parent, trace_state)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    run.id, run.definitionHash, run.sagaName, run.sagaVersion, state.status.rawValue, run.input.jsonText,
                    run.createdAt.timeIntervalSince1970, run.updatedAt.timeIntervalSince1970, run.idempotencyKey, run.trace?.parent,
                    run.trace?.state,
                ])
            let insertStep = try db.cachedStatement(sql: "INSERT INTO step (run_id, position, name, status) VALUES (?, ?, ?, ?)")
            for (position, step) in state.steps.enumerated() {
                try insertStep.execute(arguments: [run.id, position, step.name, step.status.rawValue])
            }
            // The run's state, every step and the history, as a transition would write them.
            try Self.apply(
                SagaMachine.Transition(state: state, events: exported.events + events), runID: run.id, at: run.updatedAt, db: db)
            let insertAttempt = try db.cachedStatement(
                sql: """
                    INSERT INTO attempt (run_id, position, phase, number, step_name, started_at, sends, finished_at, succeeded, http_status,
                        error, duration_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for attempt in exported.attempts {
                try insertAttempt.execute(arguments: [
                    run.id, attempt.key.step, attempt.key.phase.rawValue, attempt.key.number, attempt.key.stepName,
                    attempt.startedAt.timeIntervalSince1970, attempt.sends, attempt.finishedAt?.timeIntervalSince1970, attempt.succeeded,
                    attempt.httpStatus, attempt.error, attempt.durationMs,
                ])
            }
            return ImportedRun.imported
        }
    }

    // MARK: - Retention

    /// Statuses `prune` deletes. Runs in `compensation_failed` or `stuck` wait for an operator and are kept.
    public static let prunableStatuses: [RunStatus] = [.completed, .compensated, .abandoned]

    /// Deletes runs that finished (completed or compensated) before `cutoff`, with their steps, attempts and history,
    /// `batchSize` runs per transaction so the engine's own writes go in between. Returns how many runs were deleted.
    public func prune(finishedBefore cutoff: Date, batchSize: Int = 500) async throws -> Int {
        let statuses = Self.prunableStatuses.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        var total = 0
        while true {
            let deleted = try await pool.write { db in
                try db.execute(
                    sql: """
                        DELETE FROM run WHERE id IN (
                            SELECT id FROM run WHERE status IN (\(statuses)) AND updated_at < ? ORDER BY updated_at LIMIT ?)
                        """,
                    arguments: [cutoff.timeIntervalSince1970, batchSize])
                return db.changesCount
            }
            total += deleted
            if deleted < batchSize { return total }
            await Task.yield()
        }
    }

    /// Copies the write-ahead log into the database file and empties it, then returns the file's size in bytes.
    public func checkpointedSize() throws -> Int {
        try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? Int) ?? 0
    }

    /// Transactions committed for run transitions since the store opened, and the transitions they carried.
    public var commitStatistics: (transactions: Int, transitions: Int) {
        let statistics = committer.statistics
        return (statistics.transactions, statistics.changes)
    }

    /// The SQLite library's version.
    public static var sqliteVersion: String {
        let version = try? DatabaseQueue().read { db in try String.fetchOne(db, sql: "SELECT sqlite_version()") }
        return version.flatMap { $0 } ?? "unknown"
    }

}

// GRDB reads the rows both stores share by column name.
extension RunRow: FetchableRecord {}
extension StepRow: FetchableRecord {}
extension CallbackRow: FetchableRecord {}
extension EventRow: FetchableRecord {}
extension AttemptRow: FetchableRecord {}
extension DefinitionRow: FetchableRecord {}

/// The database cannot be used; the message says which file and what to do.
public struct SQLiteStoreError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public var description: String { message }

    static func cannotOpen(path: String, reason: String) -> SQLiteStoreError {
        SQLiteStoreError(message: "cannot open the database at \(path): \(reason). Pass --db with a writable path, or set SKALD_DB.")
    }

    static func newerSchema(path: String, unknownMigrations: [String]) -> SQLiteStoreError {
        SQLiteStoreError(
            message: "the database at \(path) was written by a newer version of Skald (it has schema migrations this version does not know: \(unknownMigrations.joined(separator: ", "))). Upgrade skald, or pass --db with another file. Nothing was changed.")
    }
}

extension SQLiteStore: StoreMaintenance {
    public var name: String { path }
    public var nodeID: String? { nil }

    /// Takes the lock once; taking it again while held does nothing.
    public func takeEngineLock() throws {
        try engineLock.withLock { held in
            if held == nil { held = try EngineLock(databasePath: path) }
        }
    }

    /// The file and its write-ahead log.
    public func sizeInBytes() async throws -> Int {
        [path, path + "-wal"].reduce(0) { total, file in
            total + (((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int) ?? 0)
        }
    }

    public func liveNodes() async throws -> [String] { [] }

    public func close() async {
        engineLock.withLock { $0 = nil }
    }
}

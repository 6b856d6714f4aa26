/// What a store throws when it refuses a change or cannot read what it holds: a kind to match on (never the
/// message's text) and a message for the person who must act.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// Why the store refused, as callers branch on it.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Hashable, Sendable {
            case duplicateRun = "duplicate run"
            case unknownRun = "unknown run"
            case idempotencyKeyTaken = "idempotency key taken"
            case attemptNotInFlight = "attempt not in flight"
            case notOwner = "not the owner"
            case uniqueViolation = "unique violation"
            case definitionConflict = "definition conflict"
            case unreadableRow = "unreadable row"
            case refused = "refused"
        }
        let base: Base

        /// A run with this id exists already.
        public static let duplicateRun = Kind(base: .duplicateRun)
        /// No run with this id is stored.
        public static let unknownRun = Kind(base: .unknownRun)
        /// An imported run's idempotency key belongs to another run of the database.
        public static let idempotencyKeyTaken = Kind(base: .idempotencyKeyTaken)
        /// The attempt a write names is not stored as in flight.
        public static let attemptNotInFlight = Kind(base: .attemptNotInFlight)
        /// On a shared database: this node does not hold the run (by owner and claim) it writes.
        public static let notOwner = Kind(base: .notOwner)
        /// A unique index refused the write: another writer stored the same thing at the same moment.
        public static let uniqueViolation = Kind(base: .uniqueViolation)
        /// The database registers another definition under the same name and version.
        public static let definitionConflict = Kind(base: .definitionConflict)
        /// A stored row cannot be read: a value no version of Skald writes, or JSON that does not parse.
        public static let unreadableRow = Kind(base: .unreadableRow)
        /// The database refused the statement for another reason (its own words are in the message).
        public static let refused = Kind(base: .refused)

        public var description: String { base.rawValue }
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func duplicateRun(_ id: String) -> StoreError { StoreError(.duplicateRun, "a run with id \(id) already exists") }
    public static func unknownRun(_ id: String) -> StoreError { StoreError(.unknownRun, "no run with id \(id) is stored") }
    public static func idempotencyKeyTaken(_ key: String, by holder: String, importing id: String) -> StoreError {
        StoreError(.idempotencyKeyTaken, "run \(id) cannot be imported: its idempotency key \(key) belongs to run \(holder) in this database already")
    }
    public static func notInFlight(_ attempt: AttemptKey) -> StoreError {
        StoreError(
            .attemptNotInFlight,
            "run \(attempt.runID): attempt \(attempt.number) of \(attempt.stepName) (\(attempt.phase.rawValue)) is not stored as in flight")
    }
    /// A stored value that is not one of `T`'s (a status no version of Skald writes).
    public static func unknownValue<T>(_ raw: String, of type: T.Type) -> StoreError {
        StoreError(.unreadableRow, "the database holds an unknown \(T.self) \"\(raw)\"; it was written by a newer Skald, or by hand")
    }

    public var description: String { message }
}

/// The store cannot take writes (or reads) for a reason outside Skald: a full disk, a read-only file, another
/// process holding the database's write lock. What happens then is the same whatever the store: nothing is
/// sent whose intent was not stored, and runs carry on once it works again.
public struct StoreUnavailable: Error, Sendable, CustomStringConvertible {
    /// What is wrong, in words an operator acts on ("the disk holding the database is full").
    public var reason: String
    /// The store's own error, for the log.
    public var detail: String

    public init(reason: String, detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "the database cannot be written: \(reason) (\(detail))" }
}

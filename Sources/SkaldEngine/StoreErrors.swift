/// What a store throws when it refuses a change.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(message: String) {
        self.message = message
    }

    public static func duplicateRun(_ id: String) -> StoreError { StoreError(message: "a run with id \(id) already exists") }
    public static func unknownRun(_ id: String) -> StoreError { StoreError(message: "no run with id \(id) is stored") }
    public static func idempotencyKeyTaken(_ key: String, by holder: String, importing id: String) -> StoreError {
        StoreError(message: "run \(id) cannot be imported: its idempotency key \(key) belongs to run \(holder) in this database already")
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

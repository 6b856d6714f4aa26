#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One engine per database: `serve`, `run` and `resume` hold an exclusive lock on `<db>.lock` while they
/// drive runs, so two processes never drive the same run. The operating system releases the lock when the
/// process ends, even by `kill -9`.
public final class EngineLock: Sendable {
    public let path: String
    private let descriptor: Int32

    /// - Throws: `SQLiteStoreError` naming the database when another process holds it.
    public init(databasePath: String) throws {
        path = databasePath + ".lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SQLiteStoreError(message: "cannot create the lock file \(path): \(String(cString: strerror(errno))). Pass --db with a writable path, or set SKALD_DB.")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw SQLiteStoreError(
                message: "another skald process (serve, run or resume) is using the database \(databasePath). Stop it first, use `skald start` against that server instead, or pass --db with another file.")
        }
        descriptor = fd
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

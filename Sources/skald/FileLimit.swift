import Glibc

/// The process's limit on open files (`RLIMIT_NOFILE`). A server keeps one descriptor per client connection, per
/// pooled connection to a participant and per store connection, and a common default soft limit (1,024) is below
/// what those add up to; the hard limit is what the operator allows.
enum FileLimit {
    /// Raises the soft limit to the hard limit (or as close as the kernel allows) and returns the soft limit in force.
    static func raiseToHard() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                limit = raised
            } else {
                // Some kernels cap it below an infinite hard limit (fs.nr_open).
                raised.rlim_cur = min(limit.rlim_max, 1 << 20)
                if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
            }
        }
        return limit.rlim_cur == rlim_t.max ? Int(Int32.max) : Int(clamping: limit.rlim_cur)
    }

    /// Descriptors kept back from client connections: the store's connections, one pooled connection per attempt in
    /// flight, and a margin for the database files, the listening socket, logs and the process's own.
    static func reserve(concurrency: Int, storeConnections: Int) -> Int {
        concurrency + storeConnections + 64
    }
}

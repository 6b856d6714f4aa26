import Foundation
import Logging
import PostgresNIO
import SkaldCore
import SkaldEngine

/// Nodes sharing the database: leases, claims, hand-backs, listening for signals, and forwarded operator actions.
extension PostgresStore {

    /// The one channel nodes signal on: `work` (runs to claim) or `command:NODE` (an action forwarded to NODE).
    static let channel = "skald"
    /// A signal's start when it names runs that stored new events: `events:RUN,RUN,…`.
    static let eventsPrefix = "events:"

    /// The database's clock in seconds since 1970, so that nodes with skewed clocks agree on leases.
    static let databaseNow = "EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION"

    /// The condition for a run that no live node drives (new, or its node stopped renewing its lease), or that no
    /// node needs to drive (it waits for an operator, or ended).
    static let claimable = """
        (run.owner IS NULL OR run.status NOT IN ('running', 'compensating')
            OR NOT EXISTS (SELECT 1 FROM skald_node WHERE skald_node.id = run.owner AND skald_node.lease_until > \(databaseNow)))
        """

    @discardableResult
    public func renewLease(for duration: Duration) async throws -> Date {
        let (logger, node, seconds) = (logger, node, duration.seconds)
        return try await transaction { db in
            let renewedAt = try await db.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO skald_node (id, lease_until, joined_at, renewed_at) VALUES ($1, \(Self.databaseNow) + $2, \(Self.databaseNow), \(Self.databaseNow))
                        ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until, renewed_at = EXCLUDED.renewed_at
                        RETURNING renewed_at
                        """, binds: Self.binds(node, seconds)), logger: logger
            ).collect().first?.decode(Double.self) ?? Date().timeIntervalSince1970
            // Nodes gone for an hour that own no unfinished run are forgotten.
            try await db.query(
                PostgresQuery(
                    unsafeSQL: """
                        DELETE FROM skald_node WHERE lease_until < \(Self.databaseNow) - 3600
                            AND NOT EXISTS (SELECT 1 FROM run WHERE run.owner = skald_node.id AND run.status IN ('running', 'compensating'))
                        """), logger: logger)
            // Answers nobody came back for, and actions taken by nodes that are gone, are forgotten after an hour.
            try await db.query(
                PostgresQuery(
                    unsafeSQL: """
                        DELETE FROM skald_command WHERE created_at < \(Self.databaseNow) - 3600
                            AND (answered_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM skald_node WHERE skald_node.id = skald_command.node))
                        """), logger: logger)
            return Date(timeIntervalSince1970: renewedAt)
        }
    }

    public func endLease() async throws {
        let (logger, node) = (logger, node)
        try await transaction { db in
            let released = try await db.query(
                "UPDATE run SET owner = NULL WHERE owner = \(node) AND status IN ('running', 'compensating') RETURNING 1", logger: logger
            ).collect().count
            if released > 0 { try await db.query("SELECT pg_notify(\(Self.channel), 'work')", logger: logger) }
            // Commands never taken are withdrawn (their callers hear "nothing was done"); a taken one was carried
            // out before the engine let go, and its answer stays for its caller.
            try await db.query("DELETE FROM skald_command WHERE node = \(node) AND answered_at IS NULL AND taken_at IS NULL", logger: logger)
            try await db.query("DELETE FROM skald_node WHERE id = \(node)", logger: logger)
        }
    }

    /// Runs without an owner, or whose owner's lease lapsed (through the `run_owner` index, not a scan of every
    /// unfinished run: a node removes its row only after letting go of its runs).
    public func releaseRun(id: String) async throws {
        let (logger, node) = (logger, node)
        try await transaction { db in
            try await db.query("UPDATE run SET owner = NULL WHERE id = \(id) AND owner = \(node)", logger: logger)
            try await db.query("SELECT pg_notify(\(Self.channel), 'work')", logger: logger)
        }
    }

    public func park(runID: String, until: Date) async throws -> Bool {
        let (logger, node) = (logger, node)
        let epoch = RunFence.epoch
        let parked = try await transaction { db -> Bool? in
            // The run's callbacks first: one being stored now commits before this reads them, or after this parks
            // (and then unparks the run itself).
            try await db.query("SELECT 1 FROM callback WHERE run_id = \(runID) FOR SHARE", logger: logger)
            let rows = try await db.query(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE run SET parked_until = $1, owner = NULL
                        WHERE id = $2 AND owner = $3 AND ($4 < 0 OR claim_epoch = $4) AND NOT \(StepRow.pendingCallbackSQL) RETURNING 1
                        """, binds: Self.binds(until.timeIntervalSince1970, runID, node, epoch ?? -1)), logger: logger
            ).collect()
            if !rows.isEmpty { return true }
            let pending = try await db.query(
                PostgresQuery(unsafeSQL: "SELECT 1 FROM run WHERE id = $1 AND owner = $2 AND \(StepRow.pendingCallbackSQL)", binds: Self.binds(runID, node)),
                logger: logger
            ).collect()
            return pending.isEmpty ? nil : false
        }
        if let parked { return parked }
        let owner = try await reading { db in
            try await db.query("SELECT owner FROM run WHERE id = \(runID)", logger: logger).collect().first
        }
        guard let owner else { throw StoreError.unknownRun(runID) }
        throw RunOwnershipLost(runID: runID, owner: try owner.decode(String?.self))
    }

    public func receiveCallback(token: String, signal: CallbackSignal, at: Date) async throws -> CallbackReceipt {
        let logger = logger
        return try await transaction { db in
            guard
                let found = try await db.query(
                    """
                    SELECT callback.*, step.status AS step_status, step.attempts AS step_attempts FROM callback
                    JOIN step ON step.run_id = callback.run_id AND step.position = callback.position
                    WHERE callback.token = \(token) FOR UPDATE OF callback
                    """, logger: logger
                ).collect().first
            else { return .unknown }
            let row = try PostgresRowDecoder.decode(CallbackRow.self, from: found)
            let (receipt, update) = try row.receive(signal, at: at)
            if let columns = update?.columns {
                try await db.query(
                    """
                    UPDATE callback SET status = coalesce(\(columns.status), status), output = coalesce(\(columns.output), output),
                        error = coalesce(\(columns.error), error), received_at = coalesce(\(columns.receivedAt), received_at),
                        heartbeat_at = coalesce(\(columns.heartbeatAt), heartbeat_at)
                    WHERE token = \(token)
                    """, logger: logger)
                // A parked run with a callback to apply is due now: any node claims it.
                if case .final? = update {
                    try await db.query("UPDATE run SET parked_until = NULL WHERE id = \(row.runID)", logger: logger)
                    try await db.query("SELECT pg_notify(\(Self.channel), 'work')", logger: logger)
                }
            }
            return receipt
        }
    }

    public func waitingSteps() async throws -> [WaitKind: Int] {
        let logger = logger
        return try await reading { db in
            var counts: [WaitKind: Int] = [:]
            for row in try await db.query(PostgresQuery(unsafeSQL: StepRow.waitingCountsSQL), logger: logger).collect() {
                let (kind, count) = try row.decode((String, Int).self)
                counts[try RunRow.decode(WaitKind.self, kind)] = count
            }
            return counts
        }
    }

    public func callbacks(runID: String) async throws -> [StoredCallback] {
        let logger = logger
        return try await reading { db in
            try await db.query(
                """
                SELECT * FROM callback WHERE run_id = \(runID) AND (status IS NOT NULL OR heartbeat_at IS NOT NULL) ORDER BY position, attempt
                """, logger: logger
            ).collect().map { try PostgresRowDecoder.decode(CallbackRow.self, from: $0).stored() }
        }
    }

    public func unparkRuns(dueBy: Date, limit: Int) async throws -> [String] {
        let logger = logger
        return try await transaction { db in
            try await db.query(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE run SET parked_until = NULL WHERE id IN (
                            SELECT id FROM run WHERE parked_until <= $1 AND status IN ('running', 'compensating')
                            ORDER BY parked_until, id LIMIT $2 FOR UPDATE SKIP LOCKED)
                        RETURNING id
                        """, binds: Self.binds(dueBy.timeIntervalSince1970, limit)), logger: logger
            ).collect().map { try $0.decode(String.self) }
        }
    }

    /// Claims a batch of runs in **one statement** (one round trip): the runs picked and taken, a take-over said in
    /// the history of each run a lapsed node held, and each run as the driver needs it (its definition's document and
    /// its steps, as JSON).
    public func claimRuns(limit: Int, excluding definitions: [String], dueBy: Date) async throws -> [StoredRun] {
        let (logger, node) = (logger, node)
        // The take-over's words, as `takeOverEvent` says them: format()'s %1$s is this node, %2$s the one before.
        let message = Self.takeOverEvent(from: "%2$s", to: "%1$s", at: 0).message
        return try await reading { db in
            let claimed = try await db.query(
                PostgresQuery(
                    unsafeSQL: """
                        WITH picked AS (
                            SELECT run.id, run.owner AS previous FROM run
                            WHERE run.status IN ('running', 'compensating')
                                AND (run.owner IS NULL OR run.owner IN (SELECT id FROM skald_node WHERE lease_until <= \(Self.databaseNow)))
                                AND NOT (run.definition_hash = ANY($3))
                                -- Never its own: a run this node owns is driven here, or taken up again by claimRun.
                                AND run.owner IS DISTINCT FROM $2
                                -- A parked run waits as a row until it comes due.
                                AND (run.parked_until IS NULL OR run.parked_until <= $4)
                            ORDER BY run.created_at LIMIT $1
                            FOR UPDATE OF run SKIP LOCKED),
                        claimed AS (
                            UPDATE run SET owner = $2, claim_epoch = run.claim_epoch + 1, parked_until = NULL FROM picked WHERE run.id = picked.id
                            RETURNING run.*, picked.previous),
                        taken AS (
                            INSERT INTO event (run_id, at, kind, message, data)
                            SELECT claimed.id, \(Self.databaseNow), '\(RunEvent.Kind.runTakenOver.rawValue)', format($5, $2::text, claimed.previous),
                                json_build_object('from', claimed.previous, 'to', $2::text)::text
                            FROM claimed WHERE claimed.previous IS NOT NULL AND claimed.previous <> $2
                            ORDER BY claimed.created_at, claimed.id
                            RETURNING 1)
                        SELECT claimed.*, definition.document,
                            (SELECT coalesce(json_agg(step ORDER BY step.position), '[]') FROM step WHERE step.run_id = claimed.id)::text AS steps
                        FROM claimed JOIN definition ON definition.hash = claimed.definition_hash
                        WHERE (SELECT count(*) FROM taken) >= 0
                        ORDER BY claimed.created_at, claimed.id
                        """,
                    binds: Self.binds(limit, node, definitions, min(dueBy, SagaMachine.latestStoredTime).timeIntervalSince1970, message)),
                logger: logger
            ).collect()
            var documents: [String: JSONValue] = [:]
            return try claimed.map { row in
                let run = try PostgresRowDecoder.decode(RunRow.self, from: row)
                let columns = row.makeRandomAccess()
                let document = try documents[run.definitionHash]
                    ?? RunRow.json(try columns["document"].decode(String.self), "definition \(run.definitionHash)")
                documents[run.definitionHash] = document
                let steps = try JSONDecoder().decode([StepRow].self, from: Data(try columns["steps"].decode(String.self).utf8))
                return try run.storedRun(document: document, steps: steps)
            }
        }
    }

    /// The database's size on disk, in bytes.
    public func databaseSize() async throws -> Int {
        let logger = logger
        return try await reading { db in
            try await db.query("SELECT pg_database_size(current_database())", logger: logger).collect().first?.decode(Int.self) ?? 0
        }
    }

    /// The nodes whose lease has not lapsed: the `skald serve` processes driving runs on this database now.
    public func liveNodes() async throws -> [String] {
        let logger = logger
        return try await reading { db in
            try await db.query(
                PostgresQuery(unsafeSQL: "SELECT id FROM skald_node WHERE lease_until > \(Self.databaseNow) ORDER BY id"), logger: logger
            ).collect().map { try $0.decode(String.self) }
        }
    }

    public func runsHeldHere() async throws -> [StoredRun] {
        let (logger, node) = (logger, node)
        return try await reading { db in
            let ids = try await db.query(
                "SELECT id FROM run WHERE owner = \(node) AND status IN ('running', 'compensating')", logger: logger
            ).collect().map { try $0.decode(String.self) }
            return try await Self.loadRuns(ids: ids, db, logger)
        }
    }

    public func runCounts() async throws -> [RunStatus: Int] {
        let logger = logger
        return try await reading { db in
            var counts: [RunStatus: Int] = [:]
            for row in try await db.query("SELECT status, count(*) FROM run GROUP BY status", logger: logger).collect() {
                let (status, count) = try row.decode((String, Int).self)
                counts[try RunRow.decode(RunStatus.self, status)] = count
            }
            return counts
        }
    }

    public func runsHeldElsewhere() async throws -> Int {
        let (logger, node) = (logger, node)
        return try await reading { db in
            try await db.query(
                "SELECT count(*) FROM run WHERE status IN ('running', 'compensating') AND owner IS DISTINCT FROM \(node) AND owner IS NOT NULL",
                logger: logger
            ).collect().first?.decode(Int.self) ?? 0
        }
    }

    /// How many attempts each node sent (for the multi-node benchmark).
    public func attemptsByNode() async throws -> [String: Int] {
        let logger = logger
        return try await reading { db in
            var counts: [String: Int] = [:]
            for row in try await db.query("SELECT node, count(*) FROM attempt WHERE node IS NOT NULL GROUP BY node", logger: logger).collect() {
                let (node, count) = try row.decode((String, Int).self)
                counts[node] = count
            }
            return counts
        }
    }

    /// How many running or compensating runs `node` owns.
    public func unfinishedRuns(ownedBy owner: String) async throws -> Int {
        let logger = logger
        return try await reading { db in
            try await db.query(
                "SELECT count(*) FROM run WHERE owner = \(owner) AND status IN ('running', 'compensating')", logger: logger
            ).collect().first?.decode(Int.self) ?? 0
        }
    }

    static func takeOverEvent(from previous: String, to node: String, at now: Double) -> RunEvent {
        RunEvent(
            at: Date(timeIntervalSince1970: now), kind: .runTakenOver,
            message: "node \(node) took the run over: node \(previous), which drove it, stopped renewing its lease",
            data: ["from": .string(previous), "to": .string(node)])
    }

    public func claimRun(id: String) async throws -> RunClaim {
        let (logger, node) = (logger, node)
        return try await transaction { db in
            // Locked first, so the owner read here is the one the claim replaces.
            guard
                let before = try await db.query(
                    PostgresQuery(unsafeSQL: "SELECT owner, status, \(Self.databaseNow) FROM run WHERE id = $1 FOR UPDATE", binds: Self.binds(id)),
                    logger: logger
                ).collect().first
            else { return .notFound }
            let (previous, status, now) = try before.decode((String?, String, Double).self)
            let claimed = try await db.query(
                PostgresQuery(
                    unsafeSQL: "UPDATE run SET owner = $1, claim_epoch = claim_epoch + 1 WHERE run.id = $2 AND (run.owner = $1 OR \(Self.claimable)) RETURNING 1",
                    binds: Self.binds(node, id)), logger: logger
            ).collect()
            guard !claimed.isEmpty else { return .ownedBy(previous ?? "?") }
            if let previous, previous != node, status == RunStatus.running.rawValue || status == RunStatus.compensating.rawValue {
                // A run its node stopped driving mid-way, taken for an operator's action: said in its history too.
                try await Self.append([Self.takeOverEvent(from: previous, to: node, at: now)], runID: id, db, logger)
            }
            guard let run = try await Self.loadRun(id: id, db, logger) else { return .notFound }
            return .claimed(run)
        }
    }

    public func listen(_ wake: @escaping @Sendable (NodeWakeUp) -> Void) async throws {
        let (location, logger, node) = (location, logger, node)
        let commandPayload = "command:\(node)"
        // The first connection is made here, so a failure is reported to the caller; later ones as they can be.
        var connection: PostgresConnection? = try await PostgresConnection.connect(configuration: location.connectionConfiguration, id: 2, logger: logger)
        while !Task.isCancelled {
            if connection == nil {
                connection = try? await PostgresConnection.connect(configuration: location.connectionConfiguration, id: 2, logger: logger)
            }
            if let current = connection {
                do {
                    try await current.listen(on: Self.channel) { notifications in
                        // Anything signalled while not listening is looked for now.
                        wake(.work)
                        wake(.command)
                        wake(.eventsMayBeMissed)
                        for try await notification in notifications {
                            let payload = notification.payload
                            if payload == "work" {
                                wake(.work)
                            } else if payload == commandPayload {
                                wake(.command)
                            } else if payload.hasPrefix(Self.eventsPrefix) {
                                wake(.events(payload.dropFirst(Self.eventsPrefix.count).split(separator: ",").map(String.init)))
                            }
                        }
                    }
                } catch {
                    logger.debug("listening for other nodes stopped", metadata: ["error": "\(Self.describe(error))"])
                }
                try? await current.close()
                connection = nil
            }
            try? await Task.sleep(for: .seconds(1))
        }
        try? await connection?.close()
    }

    public func pendingCommands() async throws -> [NodeCommand] {
        let (logger, node) = (logger, node)
        // Taking a command marks it, in the same statement, so its caller knows it can no longer be withdrawn.
        let rows = try await transaction { db in
            try await db.query(
                """
                UPDATE skald_command SET taken_at = \(unescaped: Self.databaseNow)
                WHERE node = \(node) AND answered_at IS NULL AND taken_at IS NULL
                RETURNING id, run_id, action
                """, logger: logger
            ).collect().map { try $0.decode((Int64, String, String).self) }
        }
        var commands: [NodeCommand] = []
        for (id, runID, action) in rows.sorted(by: { $0.0 < $1.0 }) {
            guard let decoded = try? JSONDecoder().decode(OperatorAction.self, from: Data(action.utf8)) else {
                // Taken, so answered: an action this Skald cannot read (a newer one sent it) is refused, not dropped.
                try await answer(id, with: CommandAnswer(outcome: .unavailable, message: "node \(node) cannot read this action (another version of Skald sent it); nothing was done"))
                continue
            }
            commands.append(NodeCommand(id: id, runID: runID, action: decoded))
        }
        return commands
    }

    public func answer(_ command: Int64, with answer: CommandAnswer) async throws {
        let logger = logger
        let text = String(decoding: try JSONEncoder().encode(answer), as: UTF8.self)
        try await transaction { db in
            _ = try await db.query(
                PostgresQuery(
                    unsafeSQL: "UPDATE skald_command SET answered_at = \(Self.databaseNow), answer = $1 WHERE id = $2",
                    binds: Self.binds(text, command)), logger: logger)
        }
    }

    public func forward(_ action: OperatorAction, runID: String, to target: String, timeout: Duration) async throws -> CommandAnswer {
        let logger = logger
        let text = String(decoding: try JSONEncoder().encode(action), as: UTF8.self)
        let payload = "command:\(target)"
        let id = try await transaction { db in
            let id = try await db.query(
                PostgresQuery(
                    unsafeSQL: "INSERT INTO skald_command (run_id, node, action, created_at) VALUES ($1, $2, $3, \(Self.databaseNow)) RETURNING id",
                    binds: Self.binds(runID, target, text)), logger: logger
            ).collect().first?.decode(Int64.self) ?? 0
            try await db.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: logger)
            return id
        }
        // Until the timeout the caller waits for the answer; then a command never taken is withdrawn ("nothing was
        // done"), and the caller of one the owner took hears that it was accepted and is being carried out.
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.milliseconds(5)
        while true {
            let row = try await reading { db in
                try await db.query("SELECT answer, taken_at FROM skald_command WHERE id = \(id)", logger: logger).collect().first
            }
            guard let row else {
                return CommandAnswer(outcome: .unavailable, message: "node \(target), which drives run \(runID), stopped before it took the action; nothing was done; try again")
            }
            let (answer, takenAt) = try row.decode((String?, Double?).self)
            if let answer {
                _ = try? await transaction { db in try await db.query("DELETE FROM skald_command WHERE id = \(id)", logger: logger) }
                return try JSONDecoder().decode(CommandAnswer.self, from: Data(answer.utf8))
            }
            if ContinuousClock.now >= deadline {
                if takenAt != nil {
                    let live = try await reading { db in
                        try await db.query(
                            PostgresQuery(
                                unsafeSQL: "SELECT 1 FROM skald_node WHERE id = $1 AND lease_until > \(Self.databaseNow)", binds: Self.binds(target)),
                            logger: logger
                        ).collect().first != nil
                    }
                    guard live else {
                        _ = try? await transaction { db in try await db.query("DELETE FROM skald_command WHERE id = \(id)", logger: logger) }
                        return CommandAnswer(
                            outcome: .unavailable,
                            message: "node \(target), which drove run \(runID), took the action and then stopped: it may or may not have been carried out; the run's history (GET /v1/runs/\(runID)/events) says, and another node takes the run over")
                    }
                    return CommandAnswer(
                        outcome: .accepted,
                        message: "node \(target), which drives run \(runID), took the action but has not finished it within \(DurationText.format(timeout)); it carries it out, and the run's history shows when it is done (GET /v1/runs/\(runID)/events)")
                }
                let withdrawn = try await transaction { db in
                    try await db.query(
                        "DELETE FROM skald_command WHERE id = \(id) AND answered_at IS NULL AND taken_at IS NULL RETURNING 1", logger: logger
                    ).collect().count
                }
                if withdrawn == 1 {
                    return CommandAnswer(
                        outcome: .unavailable,
                        message: "node \(target), which drives run \(runID), did not take the action within \(DurationText.format(timeout)); nothing was done; try again")
                }
                continue
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(100))
        }
    }
}

extension PostgresStore: StoreMaintenance {
    public var name: String { location.description }
    public var nodeID: String? { node }

    /// Any number of nodes drive a PostgreSQL database, each the runs it claimed: there is no lock to take.
    public func takeEngineLock() throws {}

    public func sizeInBytes() async throws -> Int { try await databaseSize() }

    public func close() async { await shutdown() }
}

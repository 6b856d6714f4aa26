/// The PostgreSQL schema: the same tables, columns and states as the SQLite schema (`SkaldSQLite.Schema`), as
/// versioned migrations. Never edit a shipped migration: add a new one. Times are seconds since 1970 (DOUBLE
/// PRECISION), as in SQLite, so both stores hold exactly the same values.
/// The SQLSTATE codes the store matches on: PostgreSQL's own, and those `skald_refuse` raises (class `SK`, which
/// PostgreSQL leaves free).
enum SQLState {
    static let uniqueViolation = "23505"
    /// The run is not held by this node (owner and claim epoch).
    static let notOwner = "SK001"
    /// The attempt a write names is not stored as in flight.
    static let attemptNotInFlight = "SK002"
}

enum PostgresSchema {
    struct Migration {
        var identifier: String
        /// One statement each: PostgreSQL's extended protocol takes one statement per query.
        var statements: [String]
    }

    static let migrations: [Migration] = [
        Migration(
            identifier: "v1",
            statements: [
                """
                CREATE TABLE definition (
                    hash TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL CHECK (version >= 1),
                    document TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    registered BOOLEAN NOT NULL DEFAULT false
                )
                """,
                "CREATE UNIQUE INDEX definition_registered ON definition(name, version) WHERE registered",
                """
                CREATE TABLE run (
                    id TEXT PRIMARY KEY NOT NULL,
                    definition_hash TEXT NOT NULL REFERENCES definition(hash),
                    saga_name TEXT NOT NULL,
                    saga_version INTEGER NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'compensation_failed', 'stuck', 'abandoned')),
                    input TEXT NOT NULL,
                    failure_step TEXT,
                    failure_reason TEXT,
                    compensation_failure_step TEXT,
                    compensation_failure_reason TEXT,
                    stuck_step TEXT,
                    stuck_reason TEXT,
                    deadline_at DOUBLE PRECISION,
                    created_at DOUBLE PRECISION NOT NULL,
                    updated_at DOUBLE PRECISION NOT NULL,
                    idempotency_key TEXT
                )
                """,
                "CREATE INDEX run_unfinished ON run(created_at) WHERE status IN ('running', 'compensating')",
                "CREATE INDEX run_saga ON run(saga_name, created_at)",
                "CREATE UNIQUE INDEX run_idempotency_key ON run(idempotency_key) WHERE idempotency_key IS NOT NULL",
                "CREATE INDEX run_status_id ON run(status, id)",
                """
                CREATE TABLE step (
                    run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL CHECK (position >= 0),
                    name TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'outcome_unknown', 'compensating', 'compensated', 'compensation_failed', 'compensation_skipped')),
                    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                    compensation_attempts INTEGER NOT NULL DEFAULT 0 CHECK (compensation_attempts >= 0),
                    compensation_attempts_base INTEGER NOT NULL DEFAULT 0,
                    attempts_base INTEGER NOT NULL DEFAULT 0,
                    first_attempt_at DOUBLE PRECISION,
                    compensation_first_attempt_at DOUBLE PRECISION,
                    due_at DOUBLE PRECISION,
                    response_status INTEGER,
                    response_body TEXT,
                    last_error TEXT,
                    outcome_unknown BOOLEAN NOT NULL DEFAULT false,
                    PRIMARY KEY (run_id, position),
                    UNIQUE (run_id, name)
                )
                """,
                """
                CREATE TABLE attempt (
                    run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    phase TEXT NOT NULL CHECK (phase IN ('forward', 'compensate')),
                    number INTEGER NOT NULL CHECK (number >= 1),
                    step_name TEXT NOT NULL,
                    started_at DOUBLE PRECISION NOT NULL,
                    sends INTEGER NOT NULL DEFAULT 1 CHECK (sends >= 1),
                    finished_at DOUBLE PRECISION,
                    succeeded BOOLEAN,
                    http_status INTEGER,
                    error TEXT,
                    duration_ms INTEGER,
                    PRIMARY KEY (run_id, position, phase, number)
                )
                """,
                """
                CREATE TABLE event (
                    id BIGSERIAL PRIMARY KEY,
                    run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                    at DOUBLE PRECISION NOT NULL,
                    kind TEXT NOT NULL,
                    step TEXT,
                    phase TEXT CHECK (phase IN ('forward', 'compensate')),
                    attempt INTEGER,
                    message TEXT NOT NULL,
                    data TEXT NOT NULL
                )
                """,
                "CREATE INDEX event_run ON event(run_id, id)",
                """
                CREATE FUNCTION skald_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'the event table is append-only';
                END
                $$
                """,
                "CREATE TRIGGER event_append_only BEFORE UPDATE ON event FOR EACH ROW EXECUTE FUNCTION skald_event_append_only()",
            ]),
        // Several `skald serve` nodes on one database: each run has the node that drives it, each node a lease.
        Migration(
            identifier: "v2-nodes",
            statements: [
                "ALTER TABLE run ADD COLUMN owner TEXT",
                "CREATE INDEX run_owner ON run(owner) WHERE status IN ('running', 'compensating')",
                "ALTER TABLE attempt ADD COLUMN node TEXT",
                """
                CREATE TABLE skald_node (
                    id TEXT PRIMARY KEY NOT NULL,
                    lease_until DOUBLE PRECISION NOT NULL,
                    joined_at DOUBLE PRECISION NOT NULL,
                    renewed_at DOUBLE PRECISION NOT NULL
                )
                """,
                """
                CREATE TABLE skald_command (
                    id BIGSERIAL PRIMARY KEY,
                    run_id TEXT NOT NULL,
                    node TEXT NOT NULL,
                    action TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    answered_at DOUBLE PRECISION,
                    answer TEXT
                )
                """,
                "CREATE INDEX skald_command_pending ON skald_command(node) WHERE answered_at IS NULL",
            ]),
        // A transition is stored by one statement; this aborts it (and so all of it) when it must not be stored.
        Migration(
            identifier: "v3-one-statement-transitions",
            statements: [
                """
                CREATE FUNCTION skald_refuse(reason TEXT) RETURNS INTEGER LANGUAGE plpgsql VOLATILE AS $$
                BEGIN
                    RAISE EXCEPTION '%', reason;
                END
                $$
                """
            ]),
        // The run's W3C trace context: its traceparent and the caller's tracestate.
        Migration(
            identifier: "v4-trace-context",
            statements: ["ALTER TABLE run ADD COLUMN trace_parent TEXT", "ALTER TABLE run ADD COLUMN trace_state TEXT"]),
        // When the node a forwarded action was sent to took it: from then on the caller cannot withdraw it.
        Migration(identifier: "v5-commands-taken", statements: ["ALTER TABLE skald_command ADD COLUMN taken_at DOUBLE PRECISION"]),
        // Which claim of a run this is: every claim adds one, and writes are fenced on it as well as on the owner.
        Migration(identifier: "v6-claim-epoch", statements: ["ALTER TABLE run ADD COLUMN claim_epoch BIGINT NOT NULL DEFAULT 0"]),
        // Statuses are checked where a row is read (`decode`), not by CHECK lists, so a new state needs no migration;
        // a step resolved by hand records who, what and when.
        Migration(
            identifier: "v7-no-status-lists",
            statements: [
                "ALTER TABLE run DROP CONSTRAINT IF EXISTS run_status_check",
                "ALTER TABLE step DROP CONSTRAINT IF EXISTS step_status_check",
                "ALTER TABLE step ADD COLUMN resolved_by TEXT",
                "ALTER TABLE step ADD COLUMN resolved_note TEXT",
                "ALTER TABLE step ADD COLUMN resolved_at DOUBLE PRECISION",
            ]),
        // A refusal carries a SQLSTATE of Skald's own (`SQLState`), so the store matches on the code, never the text.
        Migration(
            identifier: "v8-refusal-codes",
            statements: [
                """
                CREATE FUNCTION skald_refuse(code TEXT, reason TEXT) RETURNS INTEGER LANGUAGE plpgsql VOLATILE AS $$
                BEGIN
                    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = reason;
                END
                $$
                """
            ]),
        // A waiting step's wait (an approval, a sleep), and when a parked run (owned by no node while it waits) comes due.
        Migration(
            identifier: "v9-waits",
            statements: [
                "ALTER TABLE step ADD COLUMN wait TEXT",
                "ALTER TABLE run ADD COLUMN parked_until DOUBLE PRECISION",
                "CREATE INDEX run_parked ON run(parked_until) WHERE parked_until IS NOT NULL",
                """
                CREATE TABLE callback (
                    token TEXT PRIMARY KEY,
                    run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    attempt INTEGER NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    status TEXT,
                    output TEXT,
                    error TEXT,
                    received_at DOUBLE PRECISION,
                    heartbeat_at DOUBLE PRECISION
                )
                """,
                "CREATE INDEX callback_run ON callback(run_id)",
            ]),
        // Room left in each page, so that a run's, a step's or an attempt's update can stay on its page (a HOT update:
        // no new index entries) when it changes no indexed column. New pages only: existing rows move as they change.
        Migration(
            identifier: "v10-fillfactor",
            statements: [
                "ALTER TABLE run SET (fillfactor = 70)",
                "ALTER TABLE step SET (fillfactor = 70)",
                "ALTER TABLE attempt SET (fillfactor = 80)",
            ]),
    ]
}

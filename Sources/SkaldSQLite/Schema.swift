import GRDB

/// The database schema, as GRDB migrations. Never edit a shipped migration: add a new one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE definition (
                        hash TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        version INTEGER NOT NULL CHECK (version >= 1),
                        document TEXT NOT NULL,
                        created_at REAL NOT NULL
                    );
                    CREATE INDEX definition_name_version ON definition(name, version);

                    CREATE TABLE run (
                        id TEXT PRIMARY KEY NOT NULL,
                        definition_hash TEXT NOT NULL REFERENCES definition(hash),
                        saga_name TEXT NOT NULL,
                        saga_version INTEGER NOT NULL,
                        status TEXT NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'compensation_failed')),
                        input TEXT NOT NULL,
                        failure_step TEXT,
                        failure_reason TEXT,
                        compensation_failure_step TEXT,
                        compensation_failure_reason TEXT,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    CREATE INDEX run_unfinished ON run(created_at) WHERE status IN ('running', 'compensating');
                    CREATE INDEX run_saga ON run(saga_name, created_at);

                    CREATE TABLE step (
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        position INTEGER NOT NULL CHECK (position >= 0),
                        name TEXT NOT NULL,
                        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'compensating', 'compensated', 'compensation_failed', 'compensation_skipped')),
                        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                        compensation_attempts INTEGER NOT NULL DEFAULT 0 CHECK (compensation_attempts >= 0),
                        due_at REAL,
                        response_status INTEGER,
                        response_body TEXT,
                        last_error TEXT,
                        PRIMARY KEY (run_id, position),
                        UNIQUE (run_id, name)
                    ) WITHOUT ROWID;

                    CREATE TABLE attempt (
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        position INTEGER NOT NULL,
                        phase TEXT NOT NULL CHECK (phase IN ('forward', 'compensate')),
                        number INTEGER NOT NULL CHECK (number >= 1),
                        step_name TEXT NOT NULL,
                        started_at REAL NOT NULL,
                        sends INTEGER NOT NULL DEFAULT 1 CHECK (sends >= 1),
                        finished_at REAL,
                        succeeded INTEGER CHECK (succeeded IN (0, 1)),
                        http_status INTEGER,
                        error TEXT,
                        duration_ms INTEGER,
                        PRIMARY KEY (run_id, position, phase, number)
                    ) WITHOUT ROWID;

                    CREATE TABLE event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        at REAL NOT NULL,
                        kind TEXT NOT NULL,
                        step TEXT,
                        phase TEXT CHECK (phase IN ('forward', 'compensate')),
                        attempt INTEGER,
                        message TEXT NOT NULL,
                        data TEXT NOT NULL
                    );
                    CREATE INDEX event_run ON event(run_id, id);
                    CREATE TRIGGER event_append_only BEFORE UPDATE ON event
                    BEGIN
                        SELECT RAISE(ABORT, 'the event table is append-only');
                    END;
                    """)
        }
        migrator.registerMigration("v2-service") { db in
            try db.execute(
                sql: """
                    ALTER TABLE definition ADD COLUMN registered INTEGER NOT NULL DEFAULT 0 CHECK (registered IN (0, 1));
                    CREATE UNIQUE INDEX definition_registered ON definition(name, version) WHERE registered = 1;
                    ALTER TABLE run ADD COLUMN idempotency_key TEXT;
                    CREATE UNIQUE INDEX run_idempotency_key ON run(idempotency_key) WHERE idempotency_key IS NOT NULL;
                    CREATE INDEX run_status_id ON run(status, id);
                    ALTER TABLE step ADD COLUMN compensation_attempts_base INTEGER NOT NULL DEFAULT 0;
                    """)
        }
        migrator.registerMigration("v3-semantics") { db in
            // SQLite cannot change a CHECK constraint in place: rebuild the run table to allow 'stuck'.
            // GRDB runs migrations with foreign keys off and checks them all before committing.
            try db.execute(
                sql: """
                    CREATE TABLE run_new (
                        id TEXT PRIMARY KEY NOT NULL,
                        definition_hash TEXT NOT NULL REFERENCES definition(hash),
                        saga_name TEXT NOT NULL,
                        saga_version INTEGER NOT NULL,
                        status TEXT NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'compensation_failed', 'stuck')),
                        input TEXT NOT NULL,
                        failure_step TEXT,
                        failure_reason TEXT,
                        compensation_failure_step TEXT,
                        compensation_failure_reason TEXT,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        idempotency_key TEXT,
                        stuck_step TEXT,
                        stuck_reason TEXT,
                        deadline_at REAL
                    );
                    INSERT INTO run_new (id, definition_hash, saga_name, saga_version, status, input, failure_step, failure_reason,
                        compensation_failure_step, compensation_failure_reason, created_at, updated_at, idempotency_key)
                    SELECT id, definition_hash, saga_name, saga_version, status, input, failure_step, failure_reason,
                        compensation_failure_step, compensation_failure_reason, created_at, updated_at, idempotency_key FROM run;
                    DROP TABLE run;
                    ALTER TABLE run_new RENAME TO run;
                    CREATE INDEX run_unfinished ON run(created_at) WHERE status IN ('running', 'compensating');
                    CREATE INDEX run_saga ON run(saga_name, created_at);
                    CREATE UNIQUE INDEX run_idempotency_key ON run(idempotency_key) WHERE idempotency_key IS NOT NULL;
                    CREATE INDEX run_status_id ON run(status, id);
                    UPDATE run SET failure_step = NULL WHERE failure_step = '';
                    ALTER TABLE step ADD COLUMN attempts_base INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE step ADD COLUMN first_attempt_at REAL;
                    ALTER TABLE step ADD COLUMN compensation_first_attempt_at REAL;
                    """)
        }
        migrator.registerMigration("v4-unknown-outcomes") { db in
            // Rebuilt for the new CHECK constraints: a step may end 'outcome_unknown' and a run 'abandoned'.
            try db.execute(
                sql: """
                    CREATE TABLE step_new (
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        position INTEGER NOT NULL CHECK (position >= 0),
                        name TEXT NOT NULL,
                        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'outcome_unknown', 'compensating', 'compensated', 'compensation_failed', 'compensation_skipped')),
                        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                        compensation_attempts INTEGER NOT NULL DEFAULT 0 CHECK (compensation_attempts >= 0),
                        due_at REAL,
                        response_status INTEGER,
                        response_body TEXT,
                        last_error TEXT,
                        compensation_attempts_base INTEGER NOT NULL DEFAULT 0,
                        attempts_base INTEGER NOT NULL DEFAULT 0,
                        first_attempt_at REAL,
                        compensation_first_attempt_at REAL,
                        outcome_unknown INTEGER NOT NULL DEFAULT 0 CHECK (outcome_unknown IN (0, 1)),
                        PRIMARY KEY (run_id, position),
                        UNIQUE (run_id, name)
                    ) WITHOUT ROWID;
                    INSERT INTO step_new (run_id, position, name, status, attempts, compensation_attempts, due_at, response_status,
                        response_body, last_error, compensation_attempts_base, attempts_base, first_attempt_at, compensation_first_attempt_at)
                    SELECT run_id, position, name, status, attempts, compensation_attempts, due_at, response_status,
                        response_body, last_error, compensation_attempts_base, attempts_base, first_attempt_at, compensation_first_attempt_at
                    FROM step;
                    DROP TABLE step;
                    ALTER TABLE step_new RENAME TO step;

                    CREATE TABLE run_new (
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
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        idempotency_key TEXT,
                        stuck_step TEXT,
                        stuck_reason TEXT,
                        deadline_at REAL
                    );
                    INSERT INTO run_new SELECT id, definition_hash, saga_name, saga_version, status, input, failure_step, failure_reason,
                        compensation_failure_step, compensation_failure_reason, created_at, updated_at, idempotency_key, stuck_step,
                        stuck_reason, deadline_at FROM run;
                    DROP TABLE run;
                    ALTER TABLE run_new RENAME TO run;
                    CREATE INDEX run_unfinished ON run(created_at) WHERE status IN ('running', 'compensating');
                    CREATE INDEX run_saga ON run(saga_name, created_at);
                    CREATE UNIQUE INDEX run_idempotency_key ON run(idempotency_key) WHERE idempotency_key IS NOT NULL;
                    CREATE INDEX run_status_id ON run(status, id);
                    """)
        }
        // The run's W3C trace context: its traceparent and the caller's tracestate.
        migrator.registerMigration("v5-trace-context") { db in
            try db.execute(
                sql: """
                    ALTER TABLE run ADD COLUMN trace_parent TEXT;
                    ALTER TABLE run ADD COLUMN trace_state TEXT;
                    """)
        }
        // Statuses are checked where a row is read (`decode`), not by CHECK lists: a new state needs no table
        // rebuild. This is the last rebuild: run and step lose their lists, every row and column kept. A step
        // resolved by hand records who, what and when.
        migrator.registerMigration("v6-no-status-lists") { db in
            try db.execute(
                sql: """
                    CREATE TABLE step_new (
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        position INTEGER NOT NULL CHECK (position >= 0),
                        name TEXT NOT NULL,
                        status TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                        compensation_attempts INTEGER NOT NULL DEFAULT 0 CHECK (compensation_attempts >= 0),
                        due_at REAL,
                        response_status INTEGER,
                        response_body TEXT,
                        last_error TEXT,
                        compensation_attempts_base INTEGER NOT NULL DEFAULT 0,
                        attempts_base INTEGER NOT NULL DEFAULT 0,
                        first_attempt_at REAL,
                        compensation_first_attempt_at REAL,
                        outcome_unknown INTEGER NOT NULL DEFAULT 0 CHECK (outcome_unknown IN (0, 1)),
                        resolved_by TEXT,
                        resolved_note TEXT,
                        resolved_at REAL,
                        PRIMARY KEY (run_id, position),
                        UNIQUE (run_id, name)
                    ) WITHOUT ROWID;
                    INSERT INTO step_new (run_id, position, name, status, attempts, compensation_attempts, due_at, response_status,
                        response_body, last_error, compensation_attempts_base, attempts_base, first_attempt_at, compensation_first_attempt_at,
                        outcome_unknown)
                    SELECT run_id, position, name, status, attempts, compensation_attempts, due_at, response_status,
                        response_body, last_error, compensation_attempts_base, attempts_base, first_attempt_at, compensation_first_attempt_at,
                        outcome_unknown
                    FROM step;
                    DROP TABLE step;
                    ALTER TABLE step_new RENAME TO step;

                    CREATE TABLE run_new (
                        id TEXT PRIMARY KEY NOT NULL,
                        definition_hash TEXT NOT NULL REFERENCES definition(hash),
                        saga_name TEXT NOT NULL,
                        saga_version INTEGER NOT NULL,
                        status TEXT NOT NULL,
                        input TEXT NOT NULL,
                        failure_step TEXT,
                        failure_reason TEXT,
                        compensation_failure_step TEXT,
                        compensation_failure_reason TEXT,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        idempotency_key TEXT,
                        stuck_step TEXT,
                        stuck_reason TEXT,
                        deadline_at REAL,
                        trace_parent TEXT,
                        trace_state TEXT
                    );
                    INSERT INTO run_new SELECT id, definition_hash, saga_name, saga_version, status, input, failure_step, failure_reason,
                        compensation_failure_step, compensation_failure_reason, created_at, updated_at, idempotency_key, stuck_step,
                        stuck_reason, deadline_at, trace_parent, trace_state FROM run;
                    DROP TABLE run;
                    ALTER TABLE run_new RENAME TO run;
                    CREATE INDEX run_unfinished ON run(created_at) WHERE status IN ('running', 'compensating');
                    CREATE INDEX run_saga ON run(saga_name, created_at);
                    CREATE UNIQUE INDEX run_idempotency_key ON run(idempotency_key) WHERE idempotency_key IS NOT NULL;
                    CREATE INDEX run_status_id ON run(status, id);
                    """)
        }
        migrator.registerMigration("v7-waits") { db in
            // A waiting step's wait, when a parked run (one no driver holds in memory) comes due, and the callback
            // tokens of callback steps' attempts with what their participants posted.
            try db.execute(
                sql: """
                    ALTER TABLE step ADD COLUMN wait TEXT;
                    ALTER TABLE run ADD COLUMN parked_until REAL;
                    CREATE INDEX run_parked ON run(parked_until) WHERE parked_until IS NOT NULL;
                    CREATE TABLE callback (
                        token TEXT PRIMARY KEY NOT NULL,
                        run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
                        position INTEGER NOT NULL,
                        attempt INTEGER NOT NULL,
                        created_at REAL NOT NULL,
                        status TEXT,
                        output TEXT,
                        error TEXT,
                        received_at REAL,
                        heartbeat_at REAL
                    );
                    CREATE INDEX callback_run ON callback(run_id);
                    """)
        }
        return migrator
    }
}

-- The catalog schema for SQLite. Keep in step with ../postgres/0001_catalog.sql:
-- same tables, columns and meaning; times are unix milliseconds (BIGINT).

CREATE TABLE calls (
    id               TEXT PRIMARY KEY NOT NULL,
    direction        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    queue            TEXT,
    language         TEXT,
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    settings_version BIGINT
);

CREATE TABLE call_decisions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id  TEXT NOT NULL REFERENCES calls (id),
    at       BIGINT NOT NULL,
    decision TEXT NOT NULL,
    reason   TEXT NOT NULL
);
CREATE INDEX call_decisions_call ON call_decisions (call_id, id);

CREATE TABLE participants (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id   TEXT NOT NULL REFERENCES calls (id),
    role      TEXT NOT NULL,
    channel   BIGINT NOT NULL,
    number    TEXT,
    name      TEXT,
    joined_at BIGINT NOT NULL,
    left_at   BIGINT
);
CREATE INDEX participants_call ON participants (call_id);
CREATE INDEX participants_number ON participants (number);

CREATE TABLE recordings (
    id                TEXT PRIMARY KEY NOT NULL,
    call_id           TEXT NOT NULL REFERENCES calls (id),
    format            TEXT NOT NULL,
    status            TEXT NOT NULL,
    previous_status   TEXT,
    status_reason     TEXT NOT NULL,
    status_changed_at BIGINT NOT NULL,
    spool_path        TEXT,
    storage_backend   TEXT,
    storage_key       TEXT,
    size_bytes        BIGINT,
    sha256            TEXT,
    duration_ms       BIGINT,
    is_partial        BIGINT NOT NULL DEFAULT 0,
    attempts          BIGINT NOT NULL DEFAULT 0,
    last_error        TEXT,
    next_attempt_at   BIGINT,
    created_at        BIGINT NOT NULL,
    delivered_at      BIGINT
);
CREATE INDEX recordings_created ON recordings (created_at, id);
CREATE INDEX recordings_due ON recordings (status, next_attempt_at);
CREATE INDEX recordings_delivered ON recordings (status, delivered_at);
CREATE INDEX recordings_call ON recordings (call_id);

CREATE TABLE recording_status_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id TEXT NOT NULL REFERENCES recordings (id),
    at           BIGINT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE INDEX recording_status_history_recording ON recording_status_history (recording_id, id);

CREATE TABLE pauses (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id TEXT NOT NULL REFERENCES recordings (id),
    start_ms     BIGINT NOT NULL,
    end_ms       BIGINT NOT NULL
);
CREATE INDEX pauses_recording ON pauses (recording_id, start_ms);

CREATE TABLE settings_versions (
    version    BIGINT PRIMARY KEY NOT NULL,
    document   TEXT NOT NULL,
    author     TEXT NOT NULL,
    summary    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target, seq);

-- The audit trail is append-only, also for whoever opens the database.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- The storage settings (one row): where recordings are delivered, with the
-- credentials, so kept apart from the versioned settings that admins read.
CREATE TABLE storage_settings (
    id       BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    document TEXT NOT NULL,
    author   TEXT NOT NULL,
    saved_at BIGINT NOT NULL
);

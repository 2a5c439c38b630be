-- ColabHive state (SQLite, WAL). Applied idempotently at gateway start.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS nodes (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    site          TEXT NOT NULL,
    host          TEXT NOT NULL,
    devices       TEXT NOT NULL,          -- JSON list of Device
    registered_at REAL NOT NULL,
    last_seen     REAL NOT NULL,
    status        TEXT NOT NULL DEFAULT 'ready'
);

CREATE TABLE IF NOT EXISTS manifests (
    ref        TEXT PRIMARY KEY,          -- name@version
    name       TEXT NOT NULL,
    version    TEXT NOT NULL,
    task       TEXT NOT NULL,
    lifecycle  TEXT NOT NULL,
    body       TEXT NOT NULL,             -- JSON of the Manifest
    file       TEXT NOT NULL,
    loaded_at  REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS invocations (
    id          TEXT PRIMARY KEY,
    fn          TEXT NOT NULL,
    node_id     TEXT,
    status      TEXT NOT NULL,            -- succeeded | failed | timeout | no_capacity
    error_code  TEXT,
    queued_ms   REAL,
    run_ms      REAL,
    total_ms    REAL NOT NULL,
    batch_size  INTEGER,
    trace_id    TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS invocations_fn_created ON invocations (fn, created_at);

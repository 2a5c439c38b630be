-- Migration 1: the schema as it stood when versioning began (SQLite, WAL).
-- Every statement says IF NOT EXISTS, and only this migration must: a database made before
-- versioning is adopted by running this file over it (see colabhive/store/migrate.py).
-- Later migrations run exactly once each and need no such guard.
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

-- Async (durable) tasks: written before the 202 goes out, replayed after a restart.
CREATE TABLE IF NOT EXISTS tasks (
    id           TEXT PRIMARY KEY,
    fn           TEXT NOT NULL,
    input        BLOB NOT NULL,
    status       TEXT NOT NULL,           -- queued | running | succeeded | failed | cancelled
    tenant       TEXT NOT NULL DEFAULT '',
    idem_key     TEXT,
    traceparent  TEXT NOT NULL DEFAULT '',
    attempts     TEXT NOT NULL DEFAULT '[]',  -- JSON list of node ids, one per hand-out
    node_id      TEXT,
    output       BLOB,
    error        TEXT,                    -- JSON {"code", "message"}
    run_ms       REAL,
    created_at   REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    energy_j     REAL,                    -- the node's measured share of its batch's device energy
    energy_estimated INTEGER,             -- 1: power × time or a plugin estimate, not a counter
    carbon_g     REAL                     -- energy_j × the node's site's grid intensity
);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_idem ON tasks (tenant, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, created_at);
CREATE INDEX IF NOT EXISTS tasks_fn ON tasks (fn, created_at);

-- Credentials are stored as sha256 hashes only; the secret is shown once, at creation.
CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);

CREATE TABLE IF NOT EXISTS join_tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    note        TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    revoked_at  REAL
);

-- Lifecycle states set on the running hive; they override the manifest files' own.
CREATE TABLE IF NOT EXISTS model_states (
    ref        TEXT PRIMARY KEY,          -- name@version
    name       TEXT NOT NULL,
    lifecycle  TEXT NOT NULL,
    changed_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS lifecycle_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    ref        TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    previous   TEXT,                      -- the preferred version this promotion replaced
    reason     TEXT NOT NULL,             -- promote | rollback | retire
    detail     TEXT,                      -- JSON: the evaluation that gated it
    at         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS lifecycle_events_name ON lifecycle_events (name, id);

CREATE TABLE IF NOT EXISTS evaluations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ref             TEXT NOT NULL,
    metric          TEXT NOT NULL,
    score           REAL,
    threshold       REAL NOT NULL,
    passed          INTEGER NOT NULL,
    dataset         TEXT NOT NULL,
    dataset_sha256  TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    report          TEXT NOT NULL,        -- JSON of the EvalReport
    at              REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_ref ON evaluations (ref, id);

-- Device calibrations posted by nodes (colabhive.node.device_bench): one row per device per run.
CREATE TABLE IF NOT EXISTS calibrations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id     TEXT NOT NULL,
    node_name   TEXT NOT NULL,
    site        TEXT NOT NULL,
    device      TEXT NOT NULL,            -- device id as the node reported it (cpu:0)
    score       REAL NOT NULL,
    measured_at REAL NOT NULL,            -- the node's clock
    received_at REAL NOT NULL,            -- the gateway's clock
    body        TEXT NOT NULL             -- JSON of the DeviceCalibration
);
CREATE INDEX IF NOT EXISTS calibrations_node ON calibrations (node_name, device, id);

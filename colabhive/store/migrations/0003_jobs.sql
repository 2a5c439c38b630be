-- Training jobs: journaled before the 202, leased to one node at a time, resumed elsewhere
-- from their last checkpoint when a lease is lost; survive a gateway restart.
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,
    tenant           TEXT NOT NULL DEFAULT '',
    spec             TEXT NOT NULL,            -- the JobSpec as submitted (JSON)
    method           TEXT NOT NULL,
    output           TEXT NOT NULL,            -- name@version it produces
    status           TEXT NOT NULL,            -- queued | running | succeeded | failed | cancelled
    node_id          TEXT,
    node_name        TEXT,
    site             TEXT,
    device           TEXT,
    attempts         TEXT NOT NULL DEFAULT '[]',  -- JSON list of {"node", "site", "from_step", "at", "ended"}
    step             INTEGER NOT NULL DEFAULT 0,
    total_steps      INTEGER,
    last_metrics     TEXT,                     -- JSON of the newest point
    checkpoint_step  INTEGER,
    checkpoint_sha   TEXT,
    result_sha       TEXT,                     -- sha256 of the export tar
    result           TEXT,                     -- JSON: version, score, passed, steps, counters
    error            TEXT,                     -- JSON {"code", "message"}
    energy_j         REAL,
    created_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_tenant_created ON jobs (tenant, created_at, id);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_output_live ON jobs (output) WHERE status IN ('queued', 'running', 'succeeded');

-- Every event of a job in order: metric points, log lines, status changes (SSE resumes by seq).
CREATE TABLE IF NOT EXISTS job_events (
    job_id  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    kind    TEXT NOT NULL,                     -- metrics | log | status
    step    INTEGER,
    data    TEXT NOT NULL,
    at      REAL NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Datasets: uploaded training and evaluation data, content-addressed by sha256.
-- The file lives at <state_dir>/datasets/<id>.<format>; one file serves every tenant that
-- uploaded the same bytes, and each tenant has its own row (its own name, its own delete).
CREATE TABLE IF NOT EXISTS datasets (
    id          TEXT NOT NULL,            -- sha256 of the file, hex
    tenant      TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL,
    format      TEXT NOT NULL,            -- jsonl | csv | parquet
    bytes       INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    schema      TEXT NOT NULL,            -- JSON list of {"name", "type", "nullable"}
    sample      TEXT NOT NULL,            -- JSON list of the first rows
    created_at  REAL NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS datasets_tenant_created ON datasets (tenant, created_at, id);

-- Which jobs read a dataset: written by training jobs, so a dataset in use cannot be deleted.
CREATE TABLE IF NOT EXISTS dataset_uses (
    dataset_id  TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    tenant      TEXT NOT NULL DEFAULT '', -- the job's tenant, whose dataset row it holds
    PRIMARY KEY (dataset_id, job_id)
);

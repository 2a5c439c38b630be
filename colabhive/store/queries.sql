-- Every statement the store runs, by name (colabhive/store/db.py loads them); the schema
-- itself is in migrations/.

-- name: connection_settings
-- one script, run at open: WAL so readers never block the writer; NORMAL is durable in WAL.
-- busy_timeout first: switching to WAL takes a lock another opener may hold for a moment
PRAGMA busy_timeout = 5000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;

-- ---- schema versions (store/migrate.py) ------------------------------------------------
-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,       -- the migration file's number (0001_initial.sql: 1)
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
);

-- name: schema_version
SELECT max(version) FROM schema_version;

-- name: set_schema_version
INSERT INTO schema_version (version, name, applied_at) VALUES (:version, :name, :at);

-- name: begin_immediate
BEGIN IMMEDIATE;

-- name: user_tables
SELECT name FROM sqlite_master
WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name != 'schema_version';

-- name: table_columns
SELECT name FROM pragma_table_info(:table);

-- name: upsert_node
INSERT INTO nodes (id, name, site, host, devices, registered_at, last_seen, status)
VALUES (:id, :name, :site, :host, :devices, :now, :now, 'ready')
ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, status = 'ready';

-- name: mark_nodes
UPDATE nodes SET status = :status, last_seen = :last_seen WHERE id = :id;

-- name: replace_manifest
INSERT INTO manifests (ref, name, version, task, lifecycle, body, file, loaded_at)
VALUES (:ref, :name, :version, :task, :lifecycle, :body, :file, :now)
ON CONFLICT (ref) DO UPDATE SET task = excluded.task, lifecycle = excluded.lifecycle,
    body = excluded.body, file = excluded.file, loaded_at = excluded.loaded_at;

-- name: log_invocation
INSERT OR IGNORE INTO invocations (id, fn, node_id, status, error_code, queued_ms, run_ms, total_ms,
                                   batch_size, trace_id, created_at)
VALUES (:id, :fn, :node_id, :status, :error_code, :queued_ms, :run_ms, :total_ms,
        :batch_size, :trace_id, :created_at);

-- name: invocation_counts
SELECT fn, status, count(*) AS n FROM invocations GROUP BY fn, status ORDER BY fn, status;

-- name: recent_invocations
SELECT * FROM invocations WHERE fn = :fn ORDER BY created_at DESC LIMIT :limit;

-- name: insert_task
INSERT INTO tasks (id, fn, input, status, tenant, idem_key, traceparent, created_at)
VALUES (:id, :fn, :input, 'queued', :tenant, :idem_key, :traceparent, :created_at);

-- name: task_by_idem
SELECT * FROM tasks WHERE tenant = :tenant AND idem_key = :idem_key;

-- name: get_task
SELECT * FROM tasks WHERE id = :id;

-- name: mark_running
UPDATE tasks SET status = 'running', started_at = :started_at, attempts = :attempts, node_id = :node_id
WHERE id = :id AND status IN ('queued', 'running');

-- name: finish_task
UPDATE tasks SET status = :status, output = :output, error = :error, node_id = :node_id, run_ms = :run_ms,
    attempts = :attempts, finished_at = :finished_at,
    energy_j = :energy_j, energy_estimated = :energy_estimated, carbon_g = :carbon_g, dtype = :dtype
WHERE id = :id AND status IN ('queued', 'running');

-- name: cancel_task
UPDATE tasks SET status = 'cancelled', finished_at = :finished_at
WHERE id = :id AND status IN ('queued', 'running');

-- name: unfinished_tasks
SELECT id, fn, input, traceparent, attempts, tenant, created_at FROM tasks
WHERE status IN ('queued', 'running') ORDER BY created_at;

-- name: purge_tasks
DELETE FROM tasks WHERE finished_at IS NOT NULL AND finished_at < :before;

-- name: count_tasks_by_status
SELECT status, count(*) AS n FROM tasks GROUP BY status;

-- name: list_tasks
SELECT id, fn, status, tenant, attempts, node_id, run_ms, created_at, started_at, finished_at,
       energy_j, energy_estimated, carbon_g, dtype FROM tasks
WHERE (:fn IS NULL OR fn = :fn OR fn LIKE :fn || '@%') AND (:status IS NULL OR status = :status) AND tenant = :tenant
  AND (created_at < :after_created OR (created_at = :after_created AND id < :after_id))
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: insert_api_key
INSERT INTO api_keys (id, tenant, hash, created_at) VALUES (:id, :tenant, :hash, :created_at);

-- name: api_key_by_hash
SELECT id, tenant FROM api_keys WHERE hash = :hash AND revoked_at IS NULL;

-- name: insert_join_token
INSERT INTO join_tokens (id, hash, note, created_at) VALUES (:id, :hash, :note, :created_at);

-- name: join_token_by_hash
SELECT id FROM join_tokens WHERE hash = :hash AND revoked_at IS NULL;

-- name: any_join_token
SELECT 1 FROM join_tokens WHERE revoked_at IS NULL LIMIT 1;

-- name: model_states
SELECT ref, lifecycle FROM model_states;

-- name: save_model_state
INSERT INTO model_states (ref, name, lifecycle, changed_at) VALUES (:ref, :name, :lifecycle, :now)
ON CONFLICT (ref) DO UPDATE SET lifecycle = excluded.lifecycle, changed_at = excluded.changed_at;

-- name: insert_lifecycle_event
INSERT INTO lifecycle_events (name, ref, from_state, to_state, previous, reason, detail, at)
VALUES (:name, :ref, :from_state, :to_state, :previous, :reason, :detail, :now);

-- name: last_promotion_to_preferred
SELECT previous FROM lifecycle_events WHERE ref = :ref AND to_state = 'preferred' AND reason = 'promote'
ORDER BY id DESC LIMIT 1;

-- name: lifecycle_events_of
SELECT ref, from_state, to_state, previous, reason, detail, at FROM lifecycle_events
WHERE name = :name ORDER BY id;

-- name: insert_evaluation
INSERT INTO evaluations (ref, metric, score, threshold, passed, dataset, dataset_sha256, artifact_sha256, report, at)
VALUES (:ref, :metric, :score, :threshold, :passed, :dataset, :dataset_sha256, :artifact_sha256, :report, :at);

-- name: latest_evaluations
SELECT e.ref, e.report, e.artifact_sha256 FROM evaluations e
JOIN (SELECT ref, max(id) AS id FROM evaluations GROUP BY ref) last ON last.id = e.id;

-- name: insert_calibration
INSERT INTO calibrations (node_id, node_name, site, device, score, measured_at, received_at, body)
VALUES (:node_id, :node_name, :site, :device, :score, :measured_at, :received_at, :body);

-- name: insert_dataset
INSERT INTO datasets (id, tenant, name, format, bytes, rows, schema, sample, created_at)
VALUES (:id, :tenant, :name, :format, :bytes, :rows, :schema, :sample, :created_at)
ON CONFLICT (tenant, id) DO NOTHING;

-- name: get_dataset
SELECT * FROM datasets WHERE tenant = :tenant AND id = :id;

-- name: dataset_exists
SELECT format FROM datasets WHERE id = :id LIMIT 1;

-- name: list_datasets
SELECT id, tenant, name, format, bytes, rows, schema, created_at FROM datasets
WHERE tenant = :tenant AND (created_at < :after_created OR (created_at = :after_created AND id < :after_id))
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: delete_unused_dataset
DELETE FROM datasets WHERE tenant = :tenant AND id = :id
  AND NOT EXISTS (SELECT 1 FROM dataset_uses WHERE dataset_id = :id AND tenant = :tenant);

-- name: dataset_users
SELECT job_id FROM dataset_uses WHERE dataset_id = :id AND tenant = :tenant ORDER BY job_id LIMIT 10;

-- name: insert_dataset_use
INSERT OR IGNORE INTO dataset_uses (dataset_id, job_id, tenant) VALUES (:dataset_id, :job_id, :tenant);

-- name: delete_dataset_use
DELETE FROM dataset_uses WHERE dataset_id = :dataset_id AND job_id = :job_id;

-- ---- training jobs (gateway/jobs.py) -------------------------------------------------------
-- name: insert_job
INSERT INTO jobs (id, tenant, spec, method, output, status, total_steps, created_at)
VALUES (:id, :tenant, :spec, :method, :output, 'queued', :total_steps, :created_at);

-- name: get_job
SELECT * FROM jobs WHERE id = :id;

-- name: unfinished_jobs
SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, id;

-- name: job_output_taken
SELECT id FROM jobs WHERE output = :output AND status IN ('queued', 'running', 'succeeded') LIMIT 1;

-- name: lease_job
UPDATE jobs SET status = 'running', node_id = :node_id, node_name = :node_name, site = :site, device = :device,
    attempts = :attempts, started_at = COALESCE(started_at, :now) WHERE id = :id;

-- name: start_job
UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, :now) WHERE id = :id;

-- name: requeue_job
UPDATE jobs SET status = 'queued', node_id = NULL, device = NULL, attempts = :attempts, step = :step WHERE id = :id;

-- name: job_progress
UPDATE jobs SET step = :step, last_metrics = :last_metrics, energy_j = :energy_j WHERE id = :id;

-- name: job_checkpoint
UPDATE jobs SET checkpoint_step = :step, checkpoint_sha = :sha WHERE id = :id;

-- name: job_result_file
UPDATE jobs SET result_sha = :sha WHERE id = :id;

-- name: finish_job
UPDATE jobs SET status = :status, result = :result, error = :error, finished_at = :now, step = :step,
    energy_j = COALESCE(:energy_j, energy_j), attempts = :attempts WHERE id = :id;

-- name: list_jobs
SELECT * FROM jobs
WHERE tenant = :tenant AND (:status IS NULL OR status = :status)
  AND (:after_created IS NULL OR created_at < :after_created OR (created_at = :after_created AND id < :after_id))
ORDER BY created_at DESC, id DESC LIMIT :limit;

-- name: insert_job_event
INSERT INTO job_events (job_id, seq, kind, step, data, at) VALUES (:job_id, :seq, :kind, :step, :data, :at);

-- name: job_events_after
SELECT seq, kind, step, data, at FROM job_events WHERE job_id = :job_id AND seq > :after ORDER BY seq LIMIT :limit;

-- name: last_job_event_seq
SELECT COALESCE(MAX(seq), 0) AS seq FROM job_events WHERE job_id = :job_id;

-- name: drop_job_metrics_after
DELETE FROM job_events WHERE job_id = :job_id AND kind = 'metrics' AND step > :step;

-- name: job_metrics
SELECT data FROM job_events WHERE job_id = :job_id AND kind = 'metrics' ORDER BY seq;

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

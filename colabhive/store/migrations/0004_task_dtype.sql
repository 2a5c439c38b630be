-- The dtype a task's model ran in (bf16, fp32), so a replayed or fetched result says it
-- (X-Hive-Dtype) as the live answer did. NULL for tasks finished before this column.
ALTER TABLE tasks ADD COLUMN dtype TEXT;

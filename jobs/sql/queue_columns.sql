-- The queue role may update only the columns that claim, start, heartbeat and release write
-- (jobs/sql/queries.sql), not the whole row: after SET ROLE it cannot change a job's
-- workspace, task, payload, priority, error or key. Finish and fail run as the app role,
-- in the job's workspace context. SELECT stays table-wide (jobs_status reads every column).
REVOKE UPDATE ON {table} FROM {queue_role};
GRANT UPDATE (status, attempts, run_after, locked_by, locked_at, lease_expires_at, started_at, rerun_after)
    ON {table} TO {queue_role};

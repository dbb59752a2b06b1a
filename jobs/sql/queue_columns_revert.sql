-- Reverse of queue_columns.sql: UPDATE on the whole table again, as queue_role.sql grants it.
REVOKE UPDATE (status, attempts, run_after, locked_by, locked_at, lease_expires_at, started_at, rerun_after)
    ON {table} FROM {queue_role};
GRANT UPDATE ON {table} TO {queue_role};

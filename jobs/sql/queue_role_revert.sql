-- Reverse of queue_role.sql.
DROP POLICY IF EXISTS queue_all_workspaces ON {table};
REVOKE ALL ON {table} FROM {queue_role};

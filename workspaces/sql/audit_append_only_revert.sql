-- Reverse of audit_append_only.sql.
DROP TRIGGER IF EXISTS audit_event_append_only ON {table};
DROP FUNCTION IF EXISTS audit_event_refuse_change();
GRANT UPDATE, DELETE ON {table} TO {app_role};

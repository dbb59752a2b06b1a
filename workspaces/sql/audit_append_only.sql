-- The audit log is append-only for the app role: no UPDATE, DELETE or TRUNCATE privilege,
-- and a trigger that refuses UPDATE and DELETE from every role, the owner included.
REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {app_role};

CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change();

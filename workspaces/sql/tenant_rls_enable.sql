-- Workspace isolation for one tenant table. FORCE makes the owner subject to it too.
-- NULLIF: a custom setting that was set transaction-locally reads back as '' (not NULL)
-- after its transaction ends, and ''::bigint would raise instead of matching nothing.
-- The scalar sub-select makes PostgreSQL evaluate the setting once per statement.
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON {table}
    USING (workspace_id = (SELECT NULLIF(current_setting('app.workspace_id', true), '')::bigint))
    WITH CHECK (workspace_id = (SELECT NULLIF(current_setting('app.workspace_id', true), '')::bigint));

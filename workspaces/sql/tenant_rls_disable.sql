-- Reverse of tenant_rls_enable.sql.
DROP POLICY IF EXISTS workspace_isolation ON {table};
ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;
ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;

-- A signed-in user sees their own memberships in every workspace (the workspace switcher
-- and the membership check before a workspace context exists). Read-only: writes still
-- need the workspace context through workspace_isolation.
CREATE POLICY membership_own_rows ON {table} FOR SELECT
    USING (user_id = (SELECT NULLIF(current_setting('app.user_id', true), '')::bigint));

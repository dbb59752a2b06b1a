-- The queue role: how the worker's claim sees every workspace while handlers see one.
--
-- jobs_job has the workspace_isolation policy of every tenant table (FORCE'd), so the app
-- role sees only the jobs of the workspace in app.workspace_id. The queue role is NOLOGIN,
-- and the app role is a member of it WITH INHERIT FALSE, SET TRUE (config/embedded.py, or
-- the DBA): it gets none of the queue role's rights or policies until it runs
-- `SET LOCAL ROLE threadline_queue`. The worker does that only inside the short
-- transactions that claim, heartbeat and release jobs (jobs/sql/queries.sql); there the
-- permissive policy below ORs with workspace_isolation and every row is visible. Handlers
-- run afterwards as the app role, inside workspace_context(job.workspace_id), where only
-- workspace_isolation applies. The queue role can touch this one table and nothing else,
-- and cannot INSERT or DELETE even here: enqueue and prune go through a workspace context.
GRANT SELECT, UPDATE ON {table} TO {queue_role};
CREATE POLICY queue_all_workspaces ON {table} FOR ALL TO {queue_role} USING (true) WITH CHECK (true);

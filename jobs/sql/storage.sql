-- Storage for a hot queue table: every job is inserted once and updated two to four times
-- (claim, heartbeats, finish), so most of the table's churn is dead row versions.
-- * fillfactor 70 leaves 30% of each page free, so an update can put the new version on the
--   same page: a heartbeat (which changes no indexed column) is then a HOT update that adds
--   no index entries, and claim/finish updates stay on the page they read.
-- * vacuum after 2% of the rows (plus 500) are dead instead of the default 20%, with no
--   cost delay: the table is small when it is healthy and must be vacuumed often to stay so;
--   analyze at 5% keeps the planner's idea of "queued" rows current for the claim index.
-- Finished jobs are removed by `manage.py prune_jobs`, which keeps the table small.
ALTER TABLE {table} SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 500,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 0
);

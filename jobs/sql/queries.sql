-- Named queries of the job queue, loaded by jobs/sql/__init__.py. Each starts with a
-- `-- name:` line and one comment saying what it is for; parameters are %(name)s.
-- A lease is (id, locked_by, attempts): claiming increments attempts, so every statement
-- that ends or extends a lease matches all three and status = 'running' (fencing).

-- name: enqueue_job
-- Insert one job and wake the workers: pg_notify inside the inserting transaction is delivered
-- only if it commits, like the row itself. With a dedupe key that a queued or running job of
-- the workspace already has, nothing is inserted and no row comes back.
WITH job AS (
    INSERT INTO jobs_job (workspace_id, task, payload, status, priority, run_after, attempts, max_attempts,
                          last_error, locked_by, dedupe_key, created_at)
    VALUES (%(workspace_id)s, %(task)s, %(payload)s, 'queued', %(priority)s,
            coalesce(%(run_after)s::timestamptz, now()), 0, %(max_attempts)s, '', '', %(dedupe_key)s, now())
    ON CONFLICT (workspace_id, dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running')
    DO NOTHING
    RETURNING id, run_after, created_at
)
SELECT id, run_after, created_at, pg_notify(%(channel)s, '') FROM job;

-- name: coalesce_job
-- A queued or running job of the workspace already has this dedupe key (enqueue with
-- coalesce): a queued one is postponed to the later of its run_after and the one asked for;
-- a running one is asked to run once more when it ends (rerun_after, read by finish_job),
-- since it may have read its inputs before the change that queued it again.
UPDATE jobs_job
SET run_after = CASE WHEN status = 'queued'
                     THEN greatest(run_after, coalesce(%(run_after)s::timestamptz, now())) ELSE run_after END,
    rerun_after = CASE WHEN status = 'running'
                       THEN greatest(rerun_after, coalesce(%(run_after)s::timestamptz, now())) ELSE rerun_after END
WHERE workspace_id = %(workspace_id)s AND dedupe_key = %(dedupe_key)s AND status IN ('queued', 'running')
RETURNING id, run_after, created_at, status, payload, priority, max_attempts, attempts, rerun_after;

-- name: claim_jobs
-- Claim up to %(limit)s jobs of the given tasks in one round trip, as the queue role: first
-- running jobs whose lease ran out (their worker died or hung; this is the recovery, no cron
-- needed), then due queued jobs by priority. SKIP LOCKED lets concurrent workers take
-- disjoint rows without waiting on each other; attempts + 1 starts the new lease.
WITH expired AS (
    SELECT id FROM jobs_job
    WHERE status = 'running' AND lease_expires_at < now() AND task = ANY(%(tasks)s)
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT id FROM jobs_job
    WHERE status = 'queued' AND run_after <= now() AND task = ANY(%(tasks)s)
    ORDER BY priority DESC, run_after, id
    LIMIT greatest(%(limit)s - (SELECT count(*) FROM expired), 0)
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs_job AS job
SET status = 'running', attempts = job.attempts + 1, locked_by = %(worker)s, locked_at = now(),
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s::float8)
WHERE job.id IN (SELECT id FROM expired UNION ALL SELECT id FROM due)
RETURNING job.id, job.workspace_id, job.task, job.payload, job.attempts, job.max_attempts, job.priority;

-- name: heartbeat
-- Extend the leases this worker still holds (the job running now and those claimed but not
-- started), as the queue role; the ids that come back are the leases still held.
UPDATE jobs_job AS job
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s::float8)
FROM unnest(%(ids)s::bigint[], %(attempts)s::integer[]) AS held(id, attempt)
WHERE job.id = held.id AND job.attempts = held.attempt AND job.locked_by = %(worker)s
  AND job.status = 'running'
RETURNING job.id;

-- name: finish_job
-- Mark the job succeeded, in the handler's own transaction and workspace context, so that a
-- worker whose lease was taken over matches nothing and its handler's writes roll back.
-- A job asked to run again while it ran (rerun_after) is queued again instead, due then,
-- with its attempts back: it is a new run of the same work, not a retry.
UPDATE jobs_job
SET status = CASE WHEN rerun_after IS NULL THEN 'succeeded' ELSE 'queued' END,
    finished_at = CASE WHEN rerun_after IS NULL THEN now() END,
    run_after = coalesce(rerun_after, run_after),
    attempts = CASE WHEN rerun_after IS NULL THEN attempts ELSE 0 END,
    locked_by = CASE WHEN rerun_after IS NULL THEN locked_by ELSE '' END,
    locked_at = CASE WHEN rerun_after IS NULL THEN locked_at END,
    rerun_after = NULL, lease_expires_at = NULL
WHERE id = %(id)s AND locked_by = %(worker)s AND attempts = %(attempt)s AND status = 'running'
RETURNING id, status;

-- name: fail_job
-- Record a failed attempt: back to queued after %(delay_seconds)s (backoff with jitter) while
-- attempts remain, else "failed" for an operator; fenced like finish_job. A run asked for
-- while it ran (rerun_after) comes back, so the worker can queue that work afresh.
UPDATE jobs_job AS job
SET status = CASE WHEN job.attempts >= job.max_attempts THEN 'failed' ELSE 'queued' END,
    run_after = CASE WHEN job.attempts >= job.max_attempts THEN job.run_after
                     ELSE greatest(now() + make_interval(secs => %(delay_seconds)s::float8), job.rerun_after) END,
    finished_at = CASE WHEN job.attempts >= job.max_attempts THEN now() END,
    last_error = %(error)s, locked_by = '', locked_at = NULL, lease_expires_at = NULL, rerun_after = NULL
FROM (SELECT id, rerun_after FROM jobs_job WHERE id = %(id)s) AS before
WHERE job.id = %(id)s AND before.id = job.id AND job.locked_by = %(worker)s AND job.attempts = %(attempt)s
  AND job.status = 'running'
RETURNING job.status, before.rerun_after, job.dedupe_key;

-- name: release_jobs
-- Give back jobs this worker claimed but will not run (shutdown), as the queue role: queued
-- again and due now, with the claim's attempt undone since the handler never ran to an end.
UPDATE jobs_job AS job
SET status = 'queued', attempts = job.attempts - 1, run_after = now(),
    locked_by = '', locked_at = NULL, lease_expires_at = NULL, rerun_after = NULL
FROM unnest(%(ids)s::bigint[], %(attempts)s::integer[]) AS held(id, attempt)
WHERE job.id = held.id AND job.attempts = held.attempt AND job.locked_by = %(worker)s
  AND job.status = 'running'
RETURNING job.id;

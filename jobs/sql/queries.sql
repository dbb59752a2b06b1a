-- Named queries of the job queue, loaded by jobs/sql/__init__.py. Each starts with a
-- `-- name:` line and one comment saying what it is for; parameters are %(name)s.
-- A lease is (id, locked_by, attempts): locked_by is unique to a worker process, and starting
-- a job increments attempts, so every statement that starts, ends or releases a lease matches
-- all three and status = 'running' (fencing); attempts counts the runs started, not claims.

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
-- Claim jobs of the given tasks in one round trip, as the queue role. The job first in line
-- (a running job whose lease ran out, else the due queued job first by priority) decides
-- how: if its task is batched (%(batch_tasks)s, with %(batch_sizes)s), up to that many jobs
-- of that task in that workspace, expired ones first (a batch, run together by one
-- handler call); otherwise, or when its batch is gone to another worker, up to %(limit)s
-- jobs of any of the tasks: first running jobs whose lease ran out (their worker died or
-- hung; this is the recovery, no cron needed), then due queued jobs by priority.
-- SKIP LOCKED lets concurrent workers take disjoint rows without waiting on each other.
-- A claim is not a start: of a plain claim only the job the worker runs first (highest
-- priority, then lowest id, as the worker orders them) is started here (attempts + 1,
-- started_at); the others are started one by one just before they run (start_job), and a
-- batch all at once just before it runs (start_jobs), so a worker that dies holding them
-- charges them no attempt. A job whose attempts are used up is not started: the worker
-- fails it as lost.
WITH head AS (
    SELECT id, task, workspace_id FROM (
        (SELECT id, task, workspace_id FROM jobs_job
         WHERE status = 'running' AND lease_expires_at < now() AND task = ANY(%(tasks)s)
         ORDER BY id LIMIT 1)
        UNION ALL
        (SELECT id, task, workspace_id FROM jobs_job
         WHERE status = 'queued' AND run_after <= now() AND task = ANY(%(tasks)s)
         ORDER BY priority DESC, run_after, id LIMIT 1)
    ) AS first_in_line
    LIMIT 1
), size AS (
    SELECT coalesce((SELECT b.size FROM unnest(%(batch_tasks)s::text[], %(batch_sizes)s::integer[]) AS b(task, size)
                     WHERE b.task = (SELECT task FROM head)), 0) AS n
), batch_expired AS (
    SELECT id, priority FROM jobs_job
    WHERE status = 'running' AND lease_expires_at < now()
      AND task = (SELECT task FROM head) AND workspace_id = (SELECT workspace_id FROM head)
    ORDER BY id
    LIMIT (SELECT n FROM size)
    FOR UPDATE SKIP LOCKED
), batch_due AS (
    SELECT id, priority FROM jobs_job
    WHERE status = 'queued' AND run_after <= now()
      AND task = (SELECT task FROM head) AND workspace_id = (SELECT workspace_id FROM head)
    ORDER BY priority DESC, run_after, id
    LIMIT greatest((SELECT n FROM size) - (SELECT count(*) FROM batch_expired), 0)
    FOR UPDATE SKIP LOCKED
), batched AS (
    SELECT (SELECT count(*) FROM batch_expired) + (SELECT count(*) FROM batch_due) > 0 AS yes
), expired AS (
    SELECT id, priority FROM jobs_job
    WHERE status = 'running' AND lease_expires_at < now() AND task = ANY(%(tasks)s)
    ORDER BY id
    LIMIT CASE WHEN (SELECT yes FROM batched) THEN 0 ELSE %(limit)s END
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT id, priority FROM jobs_job
    WHERE status = 'queued' AND run_after <= now() AND task = ANY(%(tasks)s)
    ORDER BY priority DESC, run_after, id
    LIMIT CASE WHEN (SELECT yes FROM batched) THEN 0 ELSE greatest(%(limit)s - (SELECT count(*) FROM expired), 0) END
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT id, priority FROM batch_expired UNION ALL SELECT id, priority FROM batch_due
    UNION ALL SELECT id, priority FROM expired UNION ALL SELECT id, priority FROM due
), first AS (
    SELECT id FROM picked WHERE NOT (SELECT yes FROM batched) ORDER BY priority DESC, id LIMIT 1
)
UPDATE jobs_job AS job
SET status = 'running', locked_by = %(worker)s, locked_at = now(),
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s::float8),
    attempts = job.attempts + CASE WHEN job.id = (SELECT id FROM first) AND job.attempts < job.max_attempts
                                   THEN 1 ELSE 0 END,
    started_at = CASE WHEN job.id = (SELECT id FROM first) AND job.attempts < job.max_attempts THEN now() END
-- The ids as an array, not a join: the planner cannot know how few rows the CTEs pick (their
-- LIMITs are expressions), and joining an estimate of thousands took a scan of the whole table
-- (1.4 s a claim at a million jobs); an array of ids is read by primary key.
WHERE job.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING job.id, job.workspace_id, job.task, job.payload, job.attempts, job.max_attempts, job.priority,
          job.started_at IS NOT NULL;

-- name: start_jobs
-- Start a claimed batch just before its handler runs, as the queue role: every job's attempt
-- is charged now and its lease renewed, fenced like start_job; the rows that come back are
-- the jobs started (a missing one was reclaimed or cancelled meanwhile).
UPDATE jobs_job AS job
SET attempts = job.attempts + 1, started_at = now(),
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s::float8)
FROM unnest(%(ids)s::bigint[], %(attempts)s::integer[]) AS held(id, attempt)
WHERE job.id = held.id AND job.locked_by = %(worker)s AND job.attempts = held.attempt
  AND job.status = 'running' AND job.started_at IS NULL AND job.attempts < job.max_attempts
RETURNING job.id, job.attempts;

-- name: start_job
-- Start a claimed job just before it runs, as the queue role: its attempt is charged now,
-- not at the claim, and its lease is renewed. Fenced by the claim (worker, attempts, not yet
-- started); no row back means the claim was lost (reclaimed after its lease, or cancelled).
-- The worker sends it in the same message as the previous job's finish when it can, so a
-- start costs no round trip of its own (jobs/worker.py).
UPDATE jobs_job
SET attempts = attempts + 1, started_at = now(),
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s::float8)
WHERE id = %(start_id)s AND locked_by = %(worker)s AND attempts = %(start_attempt)s AND status = 'running'
  AND started_at IS NULL AND attempts < max_attempts
RETURNING id, attempts;

-- name: heartbeat
-- Extend the leases this worker still holds (the job running now and those claimed but not
-- started), as the queue role; the ids that come back are the leases still held. Worker ids
-- are unique per process, so locked_by alone says whose lease it is (a start that moves
-- attempts meanwhile does not make a lease look lost).
UPDATE jobs_job AS job
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s::float8)
WHERE job.id = ANY(%(ids)s::bigint[]) AND job.locked_by = %(worker)s AND job.status = 'running'
RETURNING job.id;

-- name: finish_job
-- Mark the job succeeded, in the handler's own transaction and workspace context, so that a
-- worker whose lease was taken over matches nothing and its handler's writes roll back:
-- matching nothing raises (jobs_lease_lost, SQLSTATE TLJ01), which aborts the transaction
-- even when the COMMIT is sent in the same message (jobs/worker.py).
-- A job asked to run again while it ran (rerun_after) is queued again instead, due then,
-- with its attempts back: it is a new run of the same work, not a retry.
WITH done AS (
    UPDATE jobs_job
    SET status = CASE WHEN rerun_after IS NULL THEN 'succeeded' ELSE 'queued' END,
        finished_at = CASE WHEN rerun_after IS NULL THEN now() END,
        run_after = coalesce(rerun_after, run_after),
        attempts = CASE WHEN rerun_after IS NULL THEN attempts ELSE 0 END,
        locked_by = CASE WHEN rerun_after IS NULL THEN locked_by ELSE '' END,
        locked_at = CASE WHEN rerun_after IS NULL THEN locked_at END,
        started_at = CASE WHEN rerun_after IS NULL THEN started_at END,
        rerun_after = NULL, lease_expires_at = NULL
    WHERE id = %(id)s AND locked_by = %(worker)s AND attempts = %(attempt)s AND status = 'running'
    RETURNING id, status
)
SELECT id, status FROM done
UNION ALL
SELECT %(id)s, jobs_lease_lost(%(id)s) WHERE NOT EXISTS (SELECT FROM done);

-- name: finish_jobs
-- finish_job for every job of a batch at once, in the batch handler's transaction: all of
-- them or, when one lease is no longer this worker's, none (jobs_lease_lost raises, and the
-- handler's writes roll back with it; the worker then runs the batch's jobs one at a time).
WITH done AS (
    UPDATE jobs_job AS job
    SET status = CASE WHEN job.rerun_after IS NULL THEN 'succeeded' ELSE 'queued' END,
        finished_at = CASE WHEN job.rerun_after IS NULL THEN now() END,
        run_after = coalesce(job.rerun_after, job.run_after),
        attempts = CASE WHEN job.rerun_after IS NULL THEN job.attempts ELSE 0 END,
        locked_by = CASE WHEN job.rerun_after IS NULL THEN job.locked_by ELSE '' END,
        locked_at = CASE WHEN job.rerun_after IS NULL THEN job.locked_at END,
        started_at = CASE WHEN job.rerun_after IS NULL THEN job.started_at END,
        rerun_after = NULL, lease_expires_at = NULL
    FROM unnest(%(finish_ids)s::bigint[], %(finish_attempts)s::integer[]) AS held(id, attempt)
    WHERE job.id = held.id AND job.locked_by = %(worker)s AND job.attempts = held.attempt AND job.status = 'running'
    RETURNING job.id, job.status
)
SELECT id, status FROM done
UNION ALL
SELECT lost.id, jobs_lease_lost(lost.id)
FROM (SELECT id FROM unnest(%(finish_ids)s::bigint[]) AS held(id) WHERE id NOT IN (SELECT id FROM done) LIMIT 1) AS lost;

-- name: fail_job
-- Record a failed attempt: back to queued after %(delay_seconds)s (backoff with jitter) while
-- attempts remain, else "failed" for an operator; fenced like finish_job. A run asked for
-- while it ran (rerun_after) comes back, so the worker can queue that work afresh.
UPDATE jobs_job AS job
SET status = CASE WHEN job.attempts >= job.max_attempts THEN 'failed' ELSE 'queued' END,
    run_after = CASE WHEN job.attempts >= job.max_attempts THEN job.run_after
                     ELSE greatest(now() + make_interval(secs => %(delay_seconds)s::float8), job.rerun_after) END,
    finished_at = CASE WHEN job.attempts >= job.max_attempts THEN now() END,
    started_at = CASE WHEN job.attempts >= job.max_attempts THEN job.started_at END,
    last_error = %(error)s, locked_by = '', locked_at = NULL, lease_expires_at = NULL, rerun_after = NULL
FROM (SELECT id, rerun_after FROM jobs_job WHERE id = %(id)s) AS before
WHERE job.id = %(id)s AND before.id = job.id AND job.locked_by = %(worker)s AND job.attempts = %(attempt)s
  AND job.status = 'running'
RETURNING job.status, before.rerun_after, job.dedupe_key;

-- name: release_jobs
-- Give back jobs this worker claimed but will not run (shutdown), as the queue role: queued
-- again and due now. A started one has its attempt undone, since its handler never ran to an
-- end; one never started was never charged.
UPDATE jobs_job AS job
SET status = 'queued', attempts = job.attempts - CASE WHEN job.started_at IS NULL THEN 0 ELSE 1 END,
    run_after = now(), locked_by = '', locked_at = NULL, lease_expires_at = NULL, rerun_after = NULL,
    started_at = NULL
FROM unnest(%(ids)s::bigint[], %(attempts)s::integer[]) AS held(id, attempt)
WHERE job.id = held.id AND job.attempts = held.attempt AND job.locked_by = %(worker)s
  AND job.status = 'running'
RETURNING job.id;

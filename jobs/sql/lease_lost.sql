-- What finish_job calls when its fenced update matched nothing: the lease is no longer this
-- worker's (reclaimed after it ran out, or cancelled). Raising instead of returning no row
-- aborts the handler's transaction even when the worker sends COMMIT in the same message as
-- the finish, so a worker that lost its lease still commits none of its handler's writes.
CREATE OR REPLACE FUNCTION jobs_lease_lost(job_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'job % is no longer leased to this worker (reclaimed or cancelled)', job_id
        USING ERRCODE = 'TLJ01';
END;
$$;

-- name: counts_by_reason_capped
-- Items per reason in one status, each count stopping at %(cap)s so that the queue page
-- costs the same with a thousand or a million open items (shown as "1000+"). Row-level
-- security limits it to the workspace; review_ws_status_reason serves each probe.
SELECT r.reason,
       (SELECT count(*) FROM (SELECT 1 FROM review_reviewitem i
                              WHERE i.status = %(status)s AND i.reason = r.reason
                              LIMIT %(cap)s) AS capped) AS n
FROM unnest(%(reasons)s::text[]) AS r(reason)

-- The review item page's statements (review.selectors: item_row, queue_neighbours,
-- item_message_rows, item_history). Each runs as the app role inside the request's workspace
-- context: row-level security filters every table read here, as it does the ORM's queries.

-- name: item_row
-- One review item with what its page shows besides j/k, in one round trip: the thread's
-- subject, the assignee's name, the item's history (as item_history) and the thread's
-- messages (as item_message_rows), each as arrays in their order. No row when the item is not
-- there (or not in this workspace).
SELECT i.id, i.workspace_id, i.thread_id, i.field_value_id, i.association_candidate_id, i.reason, i.subject_key,
       i.status, i.payload_json, i.assigned_to_id, i.claimed_until, i.claimed_at, i.skipped_by, i.resolved_by_id,
       i.resolved_at, i.version, i.created_at, t.subject AS thread_subject, u.username AS assignee_name,
       h.created_at AS history_created_at, h.type AS history_type, h.username AS history_actor,
       m.id AS message_id, m.subject AS message_subject, m.from_email, m.from_name, m.sent_at, m.parse_status,
       m.parse_error, m.folder, m.reply_head, m.reply_length
FROM review_reviewitem i
LEFT JOIN threads_thread t ON t.id = i.thread_id
LEFT JOIN auth_user u ON u.id = i.assigned_to_id
CROSS JOIN LATERAL (
    SELECT array_agg(e.created_at ORDER BY e.n) AS created_at, array_agg(e.type ORDER BY e.n) AS type,
           array_agg(e.username ORDER BY e.n) AS username
    FROM (SELECT e.created_at, e.type, a.username, row_number() OVER (ORDER BY e.created_at, e.id) AS n
          FROM workspaces_auditevent e
          LEFT JOIN auth_user a ON a.id = e.actor_id
          WHERE e.review_item_id = i.id
          ORDER BY e.created_at, e.id
          LIMIT 50) e
) h
CROSS JOIN LATERAL (
    SELECT array_agg(m.id ORDER BY m.n) AS id, array_agg(m.subject ORDER BY m.n) AS subject,
           array_agg(m.from_email ORDER BY m.n) AS from_email, array_agg(m.from_name ORDER BY m.n) AS from_name,
           array_agg(m.sent_at ORDER BY m.n) AS sent_at, array_agg(m.parse_status ORDER BY m.n) AS parse_status,
           array_agg(m.parse_error ORDER BY m.n) AS parse_error, array_agg(m.folder ORDER BY m.n) AS folder,
           array_agg(m.reply_head ORDER BY m.n) AS reply_head, array_agg(m.reply_length ORDER BY m.n) AS reply_length
    FROM (SELECT id, subject, from_email, from_name, sent_at, parse_status, parse_error, folder,
                 substr(reply_text, 1, %(limit)s) AS reply_head, length(reply_text) AS reply_length,
                 row_number() OVER (ORDER BY sent_at, created_at, id) AS n
          FROM threads_message
          WHERE thread_id = i.thread_id) m
) m
WHERE i.id = %(pk)s;

-- name: queue_neighbours
-- The items before and after one item in the queue's order (j/k, and the next item after a
-- decision), with the queue's filters and order (review.selectors._filtered and SORTS).
-- Every switch (a filter left out, the sort, the item's part) is a literal in the statement
-- (client-side binding), so PostgreSQL folds it away before planning: each probe that is
-- left is an index range scan that stops at its first row, and the skipped part says the
-- partial index's condition (review_ws_skipped) itself. Within the item's part (skipped by
-- me or not) first; ``across`` is the nearest item over the border between the parts.
WITH queue AS NOT MATERIALIZED (
    SELECT id, created_at, skipped_by
    FROM review_reviewitem
    WHERE (%(status)s = 'all'
           OR status = CASE %(status)s WHEN 'skipped' THEN 'open' WHEN 'edited' THEN 'approved' ELSE %(status)s END)
      AND (%(status)s <> 'skipped' OR skipped_by <> '{}')
      AND (%(status)s <> 'edited' OR payload_json #> '{last_decision,decision}' = '"edit"'::jsonb)
      AND (%(reason)s = '' OR reason = %(reason)s)
      AND (%(field)s = '' OR payload_json -> 'field' = to_jsonb(%(field)s::text))
      AND (NOT %(mine)s OR assigned_to_id = %(user)s)
      AND (NOT %(unassigned)s OR assigned_to_id IS NULL)
      AND (%(older)s::timestamptz IS NULL OR created_at < %(older)s::timestamptz)
      AND id <> %(pk)s
), here AS NOT MATERIALIZED (
    SELECT id, created_at FROM queue
    WHERE CASE WHEN %(skipped)s THEN skipped_by @> ARRAY[%(user)s]::bigint[] AND skipped_by <> '{}'
               ELSE NOT skipped_by @> ARRAY[%(user)s]::bigint[] END
), there AS NOT MATERIALIZED (
    SELECT id, created_at FROM queue
    WHERE CASE WHEN %(skipped)s THEN NOT skipped_by @> ARRAY[%(user)s]::bigint[]
               ELSE skipped_by @> ARRAY[%(user)s]::bigint[] AND skipped_by <> '{}' END
)
SELECT
    -- Newest first: the item before is the next newer one; oldest first, the next older.
    CASE WHEN %(newest)s
         THEN (SELECT id FROM here
               WHERE created_at >= %(created_at)s AND (created_at > %(created_at)s OR id > %(pk)s)
               ORDER BY created_at, id LIMIT 1)
         ELSE (SELECT id FROM here
               WHERE created_at <= %(created_at)s AND (created_at < %(created_at)s OR id < %(pk)s)
               ORDER BY created_at DESC, id DESC LIMIT 1)
    END AS prev_id,
    CASE WHEN %(newest)s
         THEN (SELECT id FROM here
               WHERE created_at <= %(created_at)s AND (created_at < %(created_at)s OR id < %(pk)s)
               ORDER BY created_at DESC, id DESC LIMIT 1)
         ELSE (SELECT id FROM here
               WHERE created_at >= %(created_at)s AND (created_at > %(created_at)s OR id > %(pk)s)
               ORDER BY created_at, id LIMIT 1)
    END AS next_id,
    -- Before the first item I skipped comes the last one I did not (the other part read
    -- backwards); after the last one I did not skip comes the first one I skipped.
    CASE WHEN %(newest)s <> %(skipped)s
         THEN (SELECT id FROM there ORDER BY created_at DESC, id DESC LIMIT 1)
         ELSE (SELECT id FROM there ORDER BY created_at, id LIMIT 1)
    END AS across;

-- name: item_message_rows
-- The thread's messages in order, each with the first characters of its reply (THREADLINE_BODY_DISPLAY_MAX_CHARS) and
-- the reply's length (review.selectors.item_messages): a huge reply is never read whole.
SELECT id, subject, from_email, from_name, sent_at, parse_status, parse_error, folder,
       substr(reply_text, 1, %(limit)s) AS reply_head, length(reply_text) AS reply_length
FROM threads_message
WHERE thread_id = %(thread)s
ORDER BY sent_at, created_at, id;

-- name: item_history
-- An item's audit events, oldest first (at most 50), with the actor's name; read by the
-- generated review_item_id column's index (a JSON key's index is never used under RLS).
SELECT e.created_at, e.type, u.username
FROM workspaces_auditevent e
LEFT JOIN auth_user u ON u.id = e.actor_id
WHERE e.review_item_id = %(pk)s
ORDER BY e.created_at, e.id
LIMIT 50;

-- name: item_claim
-- Claim an open item for a reviewer (review.services.review_item_claim) unless someone else
-- holds a live claim on it; renewing my own live claim keeps when it began (claimed_at).
UPDATE review_reviewitem
SET assigned_to_id = %(user)s,
    claimed_until = %(until)s,
    claimed_at = CASE WHEN assigned_to_id = %(user)s AND claimed_until >= %(now)s AND claimed_at IS NOT NULL
                      THEN claimed_at ELSE %(now)s END
WHERE id = %(pk)s
  AND status = 'open'
  AND (claimed_until IS NULL OR claimed_until < %(now)s OR assigned_to_id = %(user)s);

-- name: message_raw_write
-- Store a large message's raw bytes as a binary parameter (no hex-escaped
-- copy of them in the query text); runs in the caller's transaction, under its RLS context.
UPDATE threads_message SET raw = %(raw)b WHERE id = %(id)s

-- name: conflict_raw_write
-- The same for the raw bytes of a message kept as a Message-ID conflict.
UPDATE threads_messageconflict SET raw = %(raw)b WHERE id = %(id)s

-- name: messages_receive
-- A batch's raw bytes in one statement (binary parameters), status received; a Message-ID
-- that is there already (or twice in the batch) is passed over and looked up by the caller.
INSERT INTO threads_message (
    workspace_id, message_id, raw, raw_sha256, raw_size, source, folder, parse_status,
    in_reply_to, in_reply_to_json, references_json, related_ids, subject, base_subject, participants,
    from_email, from_name, to_json, cc_json, text, html, reply_text, headers_json, parse_error, created_at
)
SELECT %(workspace_id)s, v.message_id, v.raw, v.raw_sha256, v.raw_size, v.source, v.folder, 'received',
    '', '[]', '[]', '{}', '', '', '{}', '', '', '[]', '[]', '', '', '', '{}', '', now()
FROM unnest(%(message_ids)b::text[], %(raws)b::bytea[], %(shas)b::text[], %(sizes)b::int[], %(sources)b::text[],
    %(folders)b::text[]) WITH ORDINALITY AS v(message_id, raw, raw_sha256, raw_size, source, folder, n)
ORDER BY v.n
ON CONFLICT (workspace_id, message_id) DO NOTHING
RETURNING id, message_id

-- name: messages_found
-- The messages of a batch whose Message-ID was taken: what the caller needs to tell a copy
-- (same bytes) from a conflict (other bytes), and whether it was ever parsed.
SELECT message_id, id, raw_sha256, thread_id, parse_status FROM threads_message WHERE message_id = ANY(%(message_ids)s)

-- name: message_references_insert
-- The MessageReference rows of a batch.
INSERT INTO threads_messagereference (workspace_id, message_id, ref_id)
SELECT %(workspace_id)s, v.message_id, v.ref_id FROM unnest(%(pks)s::bigint[], %(refs)s::text[]) AS v(message_id, ref_id)

-- name: messages_parsed_store
-- A batch's parsed fields and threads, one statement: a JSON array of one object per message.
UPDATE threads_message AS m SET
    in_reply_to = v.in_reply_to, in_reply_to_json = v.in_reply_to_json, references_json = v.references_json,
    related_ids = v.related_ids, subject = v.subject, base_subject = v.base_subject,
    participants = v.participants, from_email = v.from_email, from_name = v.from_name, to_json = v.to_json,
    cc_json = v.cc_json, sent_at = v.sent_at, text = v.text, html = v.html, reply_text = v.reply_text,
    headers_json = v.headers_json, thread_id = v.thread_id, parse_status = 'parsed', parse_error = ''
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    id bigint, in_reply_to text, in_reply_to_json jsonb, references_json jsonb, related_ids text[],
    subject text, base_subject text, participants text[], from_email text, from_name text, to_json jsonb,
    cc_json jsonb, sent_at timestamptz, text text, html text, reply_text text, headers_json jsonb, thread_id bigint
)
WHERE m.id = v.id

-- name: threads_naming
-- Threads (other than those known) with a message that has one of the ids, or names one
-- (MessageReference): every thread a batch of messages can be linked to, in one query.
SELECT thread_id FROM threads_message
WHERE message_id = ANY(%(ids)s) AND thread_id IS NOT NULL AND thread_id <> ALL(%(known)s)
UNION
SELECT m.thread_id FROM threads_messagereference AS r JOIN threads_message AS m ON m.id = r.message_id
WHERE r.ref_id = ANY(%(ids)s) AND m.thread_id IS NOT NULL AND m.thread_id <> ALL(%(known)s)

-- name: thread_rows
-- What threading reads of the messages of some threads.
SELECT id AS pk, thread_id, message_id, references_json, in_reply_to_json, related_ids, base_subject, sent_at,
    participants, subject
FROM threads_message WHERE thread_id = ANY(%(threads)s)

-- name: subject_candidates
-- Threaded messages without references under one of the base subjects, sent within the
-- window (the partial index message_ws_base_subject).
SELECT id AS pk, thread_id, message_id, references_json, in_reply_to_json, related_ids, base_subject, sent_at,
    participants, subject
FROM threads_message
WHERE base_subject = ANY(%(subjects)s) AND related_ids = '{}'::character varying(998)[] AND thread_id IS NOT NULL
    AND sent_at BETWEEN %(since)s AND %(until)s

-- name: threads_insert
-- New threads with their summaries, in the order given; their ids come back in that order.
INSERT INTO threads_thread (workspace_id, subject, base_subject, participants, primary_contact_email, status,
    first_message_at, last_message_at, message_count, created_at, updated_at)
SELECT %(workspace_id)s, v.subject, v.base_subject, v.participants, v.primary_contact_email, 'open',
    v.first_message_at, v.last_message_at, v.message_count, now(), now()
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(n int, subject text, base_subject text, participants text[],
    primary_contact_email text, first_message_at timestamptz, last_message_at timestamptz, message_count int)
ORDER BY v.n
RETURNING id

-- name: threads_summary_store
-- Threads whose messages changed: their summaries recomputed, one statement.
UPDATE threads_thread AS t SET subject = v.subject, base_subject = v.base_subject, participants = v.participants,
    primary_contact_email = v.primary_contact_email, first_message_at = v.first_message_at,
    last_message_at = v.last_message_at, message_count = v.message_count, updated_at = now()
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id bigint, subject text, base_subject text, participants text[],
    primary_contact_email text, first_message_at timestamptz, last_message_at timestamptz, message_count int)
WHERE t.id = v.id

-- name: messages_move
-- Already threaded messages to their new threads.
UPDATE threads_message AS m SET thread_id = v.thread_id
FROM unnest(%(ids)s::bigint[], %(threads)s::bigint[]) AS v(id, thread_id) WHERE m.id = v.id

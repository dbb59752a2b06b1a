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

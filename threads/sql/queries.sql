-- name: message_raw_write
-- Store a large message's raw bytes as a binary parameter (no hex-escaped
-- copy of them in the query text); runs in the caller's transaction, under its RLS context.
UPDATE threads_message SET raw = %(raw)b WHERE id = %(id)s

-- name: conflict_raw_write
-- The same for the raw bytes of a message kept as a Message-ID conflict.
UPDATE threads_messageconflict SET raw = %(raw)b WHERE id = %(id)s

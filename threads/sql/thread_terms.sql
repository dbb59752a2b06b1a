-- Thread search terms (threads_threadterm), kept by a trigger on threads_thread: whatever
-- writes a thread (ingest, batched or not, the admin, a factory), its terms follow. The words
-- are those of the subject and of each participant's address (the whole address, and its
-- pieces: "cfo@acme.example" gives cfo@acme.example, cfo, acme, example), lower-cased.
-- threads/selectors.py (thread_list) finds a query's words as prefixes of these with btree
-- ranges, which row-level security lets an index serve (>= and < on text are leakproof).
CREATE FUNCTION threads_terms_of(subject text, participants text[], contact text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT DISTINCT left(word, 200)
    FROM (
        SELECT regexp_split_to_table(lower(subject), '[^[:alnum:]]+') AS word
        UNION ALL
        SELECT lower(address) FROM unnest(array_append(participants, contact)) AS address
        UNION ALL
        SELECT regexp_split_to_table(lower(address), '[^[:alnum:]]+')
        FROM unnest(array_append(participants, contact)) AS address
    ) AS words
    WHERE word <> ''
$$;

CREATE FUNCTION threads_thread_terms_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.subject IS NOT DISTINCT FROM OLD.subject
           AND NEW.participants IS NOT DISTINCT FROM OLD.participants
           AND NEW.primary_contact_email IS NOT DISTINCT FROM OLD.primary_contact_email THEN
            RETURN NULL;
        END IF;
        DELETE FROM threads_threadterm WHERE thread_id = NEW.id;
    END IF;
    INSERT INTO threads_threadterm (workspace_id, thread_id, term)
    SELECT NEW.workspace_id, NEW.id, term
    FROM threads_terms_of(NEW.subject, NEW.participants, NEW.primary_contact_email) AS term;
    RETURN NULL;
END $$;

-- A thread's terms go with it (RI actions are not subject to row-level security).
ALTER TABLE threads_threadterm ADD CONSTRAINT threadterm_thread_fk
    FOREIGN KEY (thread_id) REFERENCES threads_thread (id) ON DELETE CASCADE;
CREATE INDEX threadterm_thread ON threads_threadterm (thread_id);

CREATE TRIGGER thread_terms_sync AFTER INSERT OR UPDATE ON threads_thread
    FOR EACH ROW EXECUTE FUNCTION threads_thread_terms_sync();

-- The threads there already (the owner reads past FORCE for this one statement's sake).
ALTER TABLE threads_thread NO FORCE ROW LEVEL SECURITY;
INSERT INTO threads_threadterm (workspace_id, thread_id, term)
SELECT t.workspace_id, t.id, term
FROM threads_thread AS t, threads_terms_of(t.subject, t.participants, t.primary_contact_email) AS term;
ALTER TABLE threads_thread FORCE ROW LEVEL SECURITY;

DROP TRIGGER IF EXISTS thread_terms_sync ON threads_thread;
DROP FUNCTION IF EXISTS threads_thread_terms_sync();
DROP FUNCTION IF EXISTS threads_terms_of(text, text[], text);
DROP INDEX IF EXISTS threadterm_thread;
ALTER TABLE threads_threadterm DROP CONSTRAINT IF EXISTS threadterm_thread_fk;

-- Retention (teamroom gc): the audit log is archived, then trimmed; dead letters are found by index.
-- The PostgreSQL form of sqlite/migrations/0005_ops.sql.

-- How far the audit log has been copied to the archive (JSON lines, see README): every event with
-- an id up to events_through is in an archive file. Only those may be deleted.
CREATE TABLE archive (
    id             integer PRIMARY KEY CHECK (id = 1),
    events_through bigint NOT NULL
);
INSERT INTO archive (id, events_through) VALUES (1, 0);

-- Still never rewritten nor truncated; deleted only once archived, oldest first.
CREATE FUNCTION teamroom_events_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.id > (SELECT events_through FROM archive WHERE id = 1) THEN
        RAISE EXCEPTION 'events are append-only: only archived ones are deleted (teamroom gc)'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END
$$;
DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION teamroom_refuse('events are append-only');
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION teamroom_events_delete();

-- Dead letters per recipient (teamroom dead, stats, redrive): only dead rows are in it, so the writes
-- of a send, lease and ack never touch it.
CREATE INDEX deliveries_dead ON deliveries (recipient, id) WHERE state = 'dead';

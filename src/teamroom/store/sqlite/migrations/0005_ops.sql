-- Retention (teamroom gc): the audit log is archived, then trimmed; dead letters are found by index.

-- How far the audit log has been copied to the archive (JSON lines beside the store): every event
-- with an id up to events_through is in an archive file. Only those may be deleted.
CREATE TABLE archive (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    events_through INTEGER NOT NULL
);
INSERT INTO archive (id, events_through) VALUES (1, 0);

-- Still never rewritten (events_no_update stays); deleted only once archived, oldest first.
DROP TRIGGER events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN OLD.id > (SELECT events_through FROM archive)
BEGIN SELECT RAISE(ABORT, 'events are append-only: only archived ones are deleted (teamroom gc)'); END;

-- Dead letters per recipient (teamroom dead, stats, redrive): only dead rows are in it, so the writes
-- of a send, lease and ack never touch it.
CREATE INDEX deliveries_dead ON deliveries (recipient, id) WHERE state = 'dead';

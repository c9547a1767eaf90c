-- Agents, messages with per-recipient deliveries, and the append-only audit log.
-- Times are integer milliseconds since the Unix epoch (UTC).

CREATE TABLE agents (
    name         TEXT PRIMARY KEY,
    role         TEXT,
    capabilities TEXT NOT NULL DEFAULT '[]',  -- JSON list
    description  TEXT,
    status       TEXT,
    task         TEXT,
    note         TEXT,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    sender          TEXT NOT NULL,
    recipients      TEXT NOT NULL,  -- JSON list of resolved names
    subject         TEXT,
    body            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT,           -- JSON object or NULL
    priority        INTEGER NOT NULL,
    thread_id       TEXT NOT NULL,
    reply_to        INTEGER,
    idempotency_key TEXT,
    max_attempts    INTEGER NOT NULL,
    expires_at      INTEGER,        -- TTL deadline, NULL for none
    sent_at         INTEGER NOT NULL
);
CREATE INDEX messages_thread ON messages (thread_id, id);
CREATE UNIQUE INDEX messages_idempotency ON messages (sender, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One row per (message, recipient). state: queued | leased | acked | dead | expired.
-- visible_at: for queued, when it may be leased (a nack's retry_after); for leased, when the
-- lease ends. A leased row whose visible_at has passed is free to be leased again.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES messages (id),
    recipient    TEXT NOT NULL,
    state        TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    visible_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    lease_ms     INTEGER,
    receipt      TEXT,
    reason       TEXT,
    updated_at   INTEGER NOT NULL
);
-- Partial indexes over live rows only: what a poll or a sweep reads stays small however many
-- acked rows pile up. SQLite uses a partial index only when a query repeats its WHERE term
-- literally, so the queries in store/sql/messages.py spell these terms out.
CREATE INDEX deliveries_ready ON deliveries (recipient, priority DESC, id)
    WHERE state IN ('queued', 'leased');
CREATE INDEX deliveries_leased ON deliveries (visible_at) WHERE state = 'leased';
CREATE INDEX deliveries_expiry ON deliveries (expires_at)
    WHERE state IN ('queued', 'leased') AND expires_at IS NOT NULL;
CREATE INDEX deliveries_message ON deliveries (message_id);

CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    agent   TEXT,
    kind    TEXT NOT NULL,
    subject TEXT,
    data    TEXT  -- JSON object or NULL
);
-- No index besides the id: every state change writes here, humans read it rarely, and a filtered
-- read (teamroom log --agent X) walks it newest first by id. The two indexes it once had cost 18%
-- of a send+lease+ack cycle.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- Agents, messages with per-recipient deliveries, and the append-only audit log: the PostgreSQL
-- form of sqlite/migrations/0001_core.sql, column for column.
-- Times are bigint milliseconds since the Unix epoch (UTC), as on SQLite. Text that is compared,
-- sorted or ranged (names, resources, scopes, ids) is COLLATE "C": byte order, whatever the
-- database's default collation, so the two stores order alike. JSON stays text: the rules read it.

CREATE FUNCTION teamroom_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TABLE agents (
    name         text COLLATE "C" PRIMARY KEY,
    role         text COLLATE "C",
    capabilities text NOT NULL DEFAULT '[]',  -- JSON list
    description  text,
    status       text COLLATE "C",
    task         text,
    note         text,
    first_seen   bigint NOT NULL,
    last_seen    bigint NOT NULL
);

CREATE TABLE messages (
    id              bigserial PRIMARY KEY,
    sender          text COLLATE "C" NOT NULL,
    recipients      text NOT NULL,  -- JSON list of resolved names
    subject         text,
    body            text NOT NULL,
    kind            text COLLATE "C" NOT NULL,
    payload         text,           -- JSON object or NULL
    priority        integer NOT NULL,
    thread_id       text COLLATE "C" NOT NULL,
    reply_to        bigint,
    idempotency_key text COLLATE "C",
    max_attempts    integer NOT NULL,
    expires_at      bigint,         -- TTL deadline, NULL for none
    sent_at         bigint NOT NULL
);
CREATE INDEX messages_thread ON messages (thread_id, id);
CREATE UNIQUE INDEX messages_idempotency ON messages (sender, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One row per (message, recipient). state: queued | leased | acked | dead | expired.
-- visible_at: for queued, when it may be leased (a nack's retry_after); for leased, when the
-- lease ends. A leased row whose visible_at has passed is free to be leased again.
CREATE TABLE deliveries (
    id           bigserial PRIMARY KEY,
    message_id   bigint NOT NULL REFERENCES messages (id),
    recipient    text COLLATE "C" NOT NULL,
    state        text COLLATE "C" NOT NULL,
    priority     integer NOT NULL,
    attempt      integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    visible_at   bigint NOT NULL,
    expires_at   bigint,
    lease_ms     bigint,
    receipt      text COLLATE "C",
    reason       text,
    updated_at   bigint NOT NULL
);
-- Partial indexes over live rows only, as on SQLite: what a poll or a sweep reads stays small
-- however many acked rows pile up.
CREATE INDEX deliveries_ready ON deliveries (recipient, priority DESC, id)
    WHERE state IN ('queued', 'leased');
CREATE INDEX deliveries_leased ON deliveries (visible_at) WHERE state = 'leased';
CREATE INDEX deliveries_expiry ON deliveries (expires_at)
    WHERE state IN ('queued', 'leased') AND expires_at IS NOT NULL;
CREATE INDEX deliveries_message ON deliveries (message_id);

-- Readers ask for the events after an id, so ids must become visible in order. A bigserial is
-- handed out when a row is inserted, not when it commits: two writers could commit ids 8 and 7
-- in that order, and a reader between the two commits would see 8, move its cursor past 7 and
-- never see it. Here that cannot happen: only write transactions append events, and every write
-- transaction takes the store's write lock (a transaction-level advisory lock) before anything
-- else and holds it until it has committed; so the transaction that appends 7 has committed (and
-- is visible) before the one that appends 8 can begin.
CREATE TABLE events (
    id      bigserial PRIMARY KEY,
    at      bigint NOT NULL,
    agent   text COLLATE "C",
    kind    text COLLATE "C" NOT NULL,
    subject text COLLATE "C",
    data    text  -- JSON object or NULL
);
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION teamroom_refuse('events are append-only');
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION teamroom_refuse('events are append-only');

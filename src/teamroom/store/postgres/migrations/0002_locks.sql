-- Locks on paths, globs and named resources, with fencing tokens (sqlite/migrations/0002_locks.sql).
-- A row is one holder's lock on one normalised resource. A lock is live while expires_at > now;
-- an expired row is free to take over and is kept (for a while) so the takeover can name it.
-- holder is an agent name, or a parking name with ':' (no agent name has one), e.g. a handoff
-- holding locks for whoever resumes it. Resources, prefixes and suffixes are byte-ordered
-- (COLLATE "C"): a glob's literal prefix is the range [prefix, prefix || U+10FFFF) in that order.

CREATE TABLE locks (
    id          bigserial PRIMARY KEY,
    resource    text COLLATE "C" NOT NULL,  -- normal form (teamroom.paths)
    kind        text COLLATE "C" NOT NULL,  -- path | glob | name
    prefix      text COLLATE "C" NOT NULL,  -- literal leading segments; for a path or a name, the resource itself
    rsuffix     text COLLATE "C" NOT NULL,  -- the literal end of the last segment, reversed ('' for none, and names)
    holder      text COLLATE "C" NOT NULL,
    mode        text COLLATE "C" NOT NULL,  -- exclusive | shared
    token       bigint NOT NULL,            -- fencing token: from fence.token, bumped by every grant
    reason      text,
    ttl_ms      bigint NOT NULL,            -- the duration a heartbeat renews it by
    acquired_at bigint NOT NULL,
    expires_at  bigint NOT NULL
);
CREATE UNIQUE INDEX locks_holder_resource ON locks (holder, resource);
CREATE INDEX locks_resource ON locks (resource);
CREATE INDEX locks_kind_prefix ON locks (kind, prefix, rsuffix);
CREATE INDEX locks_expiry ON locks (expires_at);

-- The one fencing counter of the store: grows by one for every lock granted, never goes back.
CREATE TABLE fence (
    id    integer PRIMARY KEY CHECK (id = 1),
    token bigint NOT NULL
);
INSERT INTO fence (id, token) VALUES (1, 0);

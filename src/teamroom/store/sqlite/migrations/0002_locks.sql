-- Locks on paths, globs and named resources, with fencing tokens.
-- A row is one holder's lock on one normalised resource. A lock is live while expires_at > now;
-- an expired row is free to take over and is kept (for a while) so the takeover can name it.
-- holder is an agent name, or a parking name with ':' (no agent name has one), e.g. a handoff
-- holding locks for whoever resumes it.

CREATE TABLE locks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    resource    TEXT NOT NULL,     -- normal form (teamroom.paths)
    kind        TEXT NOT NULL,     -- path | glob | name
    prefix      TEXT NOT NULL,     -- literal leading segments; for a path or a name, the resource itself
    rsuffix     TEXT NOT NULL,     -- the literal end of the last segment, reversed ('' for none, and names)
    holder      TEXT NOT NULL,
    mode        TEXT NOT NULL,     -- exclusive | shared
    token       INTEGER NOT NULL,  -- fencing token: from fence.token, bumped by every grant
    reason      TEXT,
    ttl_ms      INTEGER NOT NULL,  -- the duration a heartbeat renews it by
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX locks_holder_resource ON locks (holder, resource);
CREATE INDEX locks_resource ON locks (resource);
-- Finding the locks a claim could overlap: exact paths and names by (kind, prefix = resource);
-- globs by their literal prefix (an ancestor of the claimed path, or under the claimed glob's)
-- and the end of their last segment (a glob ending '.md' cannot match a path ending '.py').
CREATE INDEX locks_kind_prefix ON locks (kind, prefix, rsuffix);
CREATE INDEX locks_expiry ON locks (expires_at);

-- The one fencing counter of the store: grows by one for every lock granted, never goes back.
CREATE TABLE fence (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token INTEGER NOT NULL
);
INSERT INTO fence (id, token) VALUES (1, 0);

-- The findings board (entries in scopes, read cursors) and handoffs.
-- Times are integer milliseconds since the Unix epoch (UTC).

-- A scope is opened by its first post; that poster owns it and alone posts decisions.
CREATE TABLE board_scopes (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    opened_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Append-only: superseding an entry is a new entry naming the old one, never an edit.
CREATE TABLE board_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    scope      TEXT NOT NULL REFERENCES board_scopes (name),
    seq        INTEGER NOT NULL,  -- 1, 2, 3 ... within the scope
    author     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    title      TEXT,
    body       TEXT NOT NULL,
    tags       TEXT NOT NULL DEFAULT '[]',  -- JSON list
    refs       TEXT NOT NULL DEFAULT '[]',  -- JSON list
    supersedes INTEGER REFERENCES board_entries (id),
    posted_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX board_entries_seq ON board_entries (scope, seq);
-- An entry is replaced at most once: superseding it again must name its replacement.
CREATE UNIQUE INDEX board_entries_supersedes ON board_entries (supersedes) WHERE supersedes IS NOT NULL;
CREATE TRIGGER board_entries_no_update BEFORE UPDATE ON board_entries
BEGIN SELECT RAISE(ABORT, 'board entries are append-only'); END;
CREATE TRIGGER board_entries_no_delete BEFORE DELETE ON board_entries
BEGIN SELECT RAISE(ABORT, 'board entries are append-only'); END;

-- What each agent has read in each scope it posted to or read: every entry up to seq, plus the
-- entries past it that a filtered read returned (board_reads; folded into seq as gaps close).
CREATE TABLE board_cursors (
    agent TEXT NOT NULL,
    scope TEXT NOT NULL,
    seq   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent, scope)
) WITHOUT ROWID;
CREATE TABLE board_reads (
    agent TEXT NOT NULL,
    scope TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (agent, scope, seq)
) WITHOUT ROWID;

-- A handoff is kept for good; only its taking (once) and its message id (once) are ever set.
CREATE TABLE handoffs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sender     TEXT NOT NULL,
    task       TEXT NOT NULL,
    summary    TEXT NOT NULL,
    next_step  TEXT NOT NULL,
    done       TEXT NOT NULL DEFAULT '[]',  -- JSON lists of strings from here to files
    remaining  TEXT NOT NULL DEFAULT '[]',
    blockers   TEXT NOT NULL DEFAULT '[]',
    files      TEXT NOT NULL DEFAULT '[]',
    branch     TEXT,
    scope      TEXT,
    addressed  TEXT NOT NULL DEFAULT '[]',  -- `to` as given: names and @roles
    recipients TEXT NOT NULL DEFAULT '[]',  -- the names it resolved to
    locks      TEXT NOT NULL DEFAULT '[]',  -- resources held for whoever resumes it
    message_id INTEGER REFERENCES messages (id),
    created_at INTEGER NOT NULL,
    taken_by   TEXT,
    taken_at   INTEGER
);
CREATE INDEX handoffs_task ON handoffs (task, id);
CREATE INDEX handoffs_open ON handoffs (id) WHERE taken_by IS NULL;
CREATE INDEX handoffs_taken_by ON handoffs (taken_by, id) WHERE taken_by IS NOT NULL;
CREATE TRIGGER handoffs_fixed BEFORE UPDATE OF id, sender, task, summary, next_step, done, remaining, blockers,
    files, branch, scope, addressed, recipients, locks, created_at ON handoffs
BEGIN SELECT RAISE(ABORT, 'a handoff record is never edited'); END;
CREATE TRIGGER handoffs_taken_once BEFORE UPDATE OF taken_by, taken_at ON handoffs WHEN OLD.taken_by IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a handoff is taken once'); END;
CREATE TRIGGER handoffs_message_once BEFORE UPDATE OF message_id ON handoffs WHEN OLD.message_id IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a handoff has one message'); END;
CREATE TRIGGER handoffs_no_delete BEFORE DELETE ON handoffs
BEGIN SELECT RAISE(ABORT, 'handoffs are kept for good'); END;

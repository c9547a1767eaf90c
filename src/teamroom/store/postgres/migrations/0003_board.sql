-- The findings board (entries in scopes, read cursors) and handoffs (sqlite/migrations/0003_board.sql).

-- A scope is opened by its first post; that poster owns it and alone posts decisions.
CREATE TABLE board_scopes (
    name       text COLLATE "C" PRIMARY KEY,
    owner      text COLLATE "C" NOT NULL,
    opened_at  bigint NOT NULL
);

-- Append-only: superseding an entry is a new entry naming the old one, never an edit.
CREATE TABLE board_entries (
    id         bigserial PRIMARY KEY,
    scope      text COLLATE "C" NOT NULL REFERENCES board_scopes (name),
    seq        bigint NOT NULL,  -- 1, 2, 3 ... within the scope
    author     text COLLATE "C" NOT NULL,
    kind       text COLLATE "C" NOT NULL,
    title      text,
    body       text NOT NULL,
    tags       text NOT NULL DEFAULT '[]',  -- JSON list
    refs       text NOT NULL DEFAULT '[]',  -- JSON list
    supersedes bigint REFERENCES board_entries (id),
    posted_at  bigint NOT NULL
);
CREATE UNIQUE INDEX board_entries_seq ON board_entries (scope, seq);
-- An entry is replaced at most once: superseding it again must name its replacement.
CREATE UNIQUE INDEX board_entries_supersedes ON board_entries (supersedes) WHERE supersedes IS NOT NULL;
CREATE TRIGGER board_entries_append_only BEFORE UPDATE OR DELETE ON board_entries
    FOR EACH ROW EXECUTE FUNCTION teamroom_refuse('board entries are append-only');

-- What each agent has read in each scope it posted to or read: every entry up to seq, plus the
-- entries past it that a filtered read returned (board_reads; folded into seq as gaps close).
CREATE TABLE board_cursors (
    agent text COLLATE "C" NOT NULL,
    scope text COLLATE "C" NOT NULL,
    seq   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (agent, scope)
);
CREATE TABLE board_reads (
    agent text COLLATE "C" NOT NULL,
    scope text COLLATE "C" NOT NULL,
    seq   bigint NOT NULL,
    PRIMARY KEY (agent, scope, seq)
);

-- A handoff is kept for good; only its taking (once) and its message id (once) are ever set.
CREATE TABLE handoffs (
    id         bigserial PRIMARY KEY,
    sender     text COLLATE "C" NOT NULL,
    task       text COLLATE "C" NOT NULL,
    summary    text NOT NULL,
    next_step  text NOT NULL,
    done       text NOT NULL DEFAULT '[]',  -- JSON lists of strings from here to files
    remaining  text NOT NULL DEFAULT '[]',
    blockers   text NOT NULL DEFAULT '[]',
    files      text NOT NULL DEFAULT '[]',
    branch     text,
    scope      text COLLATE "C",
    addressed  text NOT NULL DEFAULT '[]',  -- `to` as given: names and @roles
    recipients text NOT NULL DEFAULT '[]',  -- the names it resolved to
    locks      text NOT NULL DEFAULT '[]',  -- resources held for whoever resumes it
    message_id bigint REFERENCES messages (id),
    created_at bigint NOT NULL,
    taken_by   text COLLATE "C",
    taken_at   bigint
);
CREATE INDEX handoffs_task ON handoffs (task, id);
CREATE INDEX handoffs_open ON handoffs (id) WHERE taken_by IS NULL;
CREATE INDEX handoffs_taken_by ON handoffs (taken_by, id) WHERE taken_by IS NOT NULL;
CREATE TRIGGER handoffs_fixed BEFORE UPDATE OF id, sender, task, summary, next_step, done, remaining, blockers,
    files, branch, scope, addressed, recipients, locks, created_at ON handoffs
    FOR EACH ROW EXECUTE FUNCTION teamroom_refuse('a handoff record is never edited');
CREATE TRIGGER handoffs_taken_once BEFORE UPDATE OF taken_by, taken_at ON handoffs
    FOR EACH ROW WHEN (OLD.taken_by IS NOT NULL) EXECUTE FUNCTION teamroom_refuse('a handoff is taken once');
CREATE TRIGGER handoffs_message_once BEFORE UPDATE OF message_id ON handoffs
    FOR EACH ROW WHEN (OLD.message_id IS NOT NULL) EXECUTE FUNCTION teamroom_refuse('a handoff has one message');
CREATE TRIGGER handoffs_no_delete BEFORE DELETE ON handoffs
    FOR EACH ROW EXECUTE FUNCTION teamroom_refuse('handoffs are kept for good');

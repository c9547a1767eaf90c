-- Client sessions (Claude Code's session_id) and the agent each speaks for, so a hook that gets
-- only a session id knows whose inbox to look at; and what the hooks last showed that session,
-- so they speak up only when something is new.

CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    agent      TEXT NOT NULL,
    client     TEXT,              -- 'claude', 'codex', ...
    bound_at   INTEGER NOT NULL,
    shown      TEXT               -- JSON object: what the hooks last put in front of the agent
) WITHOUT ROWID;
CREATE INDEX sessions_agent ON sessions (agent);

-- Client sessions and the agent each speaks for, and what the hooks last showed each
-- (sqlite/migrations/0004_sessions.sql).

CREATE TABLE sessions (
    session_id text COLLATE "C" PRIMARY KEY,
    agent      text COLLATE "C" NOT NULL,
    client     text,              -- 'claude', 'codex', ...
    bound_at   bigint NOT NULL,
    shown      text               -- JSON object: what the hooks last put in front of the agent
);
CREATE INDEX sessions_agent ON sessions (agent);

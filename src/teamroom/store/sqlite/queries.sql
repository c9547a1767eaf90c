-- The SQLite dialect of every query the rules name (teamroom.store.rules), one block per query:
--
--   -- name: area.what
--   SELECT ...;
--
-- Parameters are positional (? or ?N); a list arrives as one JSON array, read with json_each(?N).
-- Queries over live deliveries repeat the term state IN ('queued', 'leased') literally so that
-- SQLite uses the partial indexes over live rows (migrations/0001_core.sql). Sections follow the
-- rules' modules; keep each query next to its siblings.

-- ============================================================================ agents, sessions

-- name: agents.seen_first
-- A name that calls any tool is known from then on (Tx.touch); 0 rows when it already was.
INSERT OR IGNORE INTO agents (name, first_seen, last_seen) VALUES (?1, ?2, ?2);

-- name: agents.seen_again
UPDATE agents SET last_seen = ?2 WHERE name = ?1;

-- name: agents.exists
SELECT 1 FROM agents WHERE name = ?1;

-- name: agents.names
SELECT name FROM agents ORDER BY name;

-- name: agents.record
SELECT * FROM agents WHERE name = ?1;

-- name: agents.register
-- A field left out (NULL) keeps its value.
UPDATE agents SET role = COALESCE(?2, role), capabilities = COALESCE(?3, capabilities),
       description = COALESCE(?4, description)
 WHERE name = ?1;

-- name: agents.set_status
-- One row only when something changed (the caller logs the change then).
UPDATE agents SET status = COALESCE(?2, status), task = COALESCE(?3, task), note = COALESCE(?4, note)
 WHERE name = ?1
   AND (status IS NOT COALESCE(?2, status) OR task IS NOT COALESCE(?3, task) OR note IS NOT COALESCE(?4, note));

-- name: sessions.available
-- Whether the store has the sessions table yet (a store older than migration 0004 has not).
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sessions';

-- name: sessions.agent
SELECT agent FROM sessions WHERE session_id = ?1;

-- name: sessions.bind
INSERT INTO sessions (session_id, agent, client, bound_at) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (session_id) DO UPDATE SET agent = excluded.agent, client = excluded.client,
       bound_at = excluded.bound_at, shown = NULL;

-- name: sessions.lookup
SELECT agent, shown FROM sessions WHERE session_id = ?1;

-- name: sessions.remember_shown
UPDATE sessions SET shown = ?3 WHERE session_id = ?1 AND agent = ?2;

-- ============================================================================ messages

-- ============================================================================ cli and web reads

-- ============================================================================ events

-- name: events.append
INSERT INTO events (at, agent, kind, subject, data) VALUES (?, ?, ?, ?, ?);

-- ============================================================================ board

-- ============================================================================ handoffs

-- ============================================================================ digest (hooks)

-- ============================================================================ locks


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

-- ============================================================================ messages

-- ============================================================================ cli and web reads

-- ============================================================================ events

-- name: events.append
INSERT INTO events (at, agent, kind, subject, data) VALUES (?, ?, ?, ?, ?);

-- ============================================================================ board

-- ============================================================================ handoffs

-- ============================================================================ digest (hooks)

-- ============================================================================ locks


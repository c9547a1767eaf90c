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

-- ============================================================================ messages

-- ============================================================================ cli and web reads

-- ============================================================================ events

-- ============================================================================ board

-- ============================================================================ handoffs

-- ============================================================================ digest (hooks)

-- ============================================================================ locks


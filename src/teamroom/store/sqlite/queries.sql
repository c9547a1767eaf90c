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

-- An entry e past agent ?1's cursor counts as unread while it is not its own, not superseded by a later
-- entry and not returned to it by a filtered read (board_reads). Each query that counts or lists unread
-- entries writes that term out; board.unread_span is the count read_board and the hooks' digest share.

-- name: board.owner
SELECT owner FROM board_scopes WHERE name = ?1;

-- name: board.open_scope
INSERT INTO board_scopes (name, owner, opened_at) VALUES (?1, ?2, ?3);

-- name: board.head
SELECT COALESCE(MAX(seq), 0) FROM board_entries WHERE scope = ?1;

-- name: board.follow
INSERT OR IGNORE INTO board_cursors (agent, scope, seq) VALUES (?1, ?2, 0);

-- name: board.cursor
SELECT seq FROM board_cursors WHERE agent = ?1 AND scope = ?2;

-- name: board.cursors
SELECT scope, seq FROM board_cursors WHERE agent = ?1;

-- name: board.post
INSERT INTO board_entries (scope, seq, author, kind, title, body, tags, refs, supersedes, posted_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
RETURNING id;

-- name: board.replaceable
SELECT e.id, e.scope, e.author, e.kind,
       (SELECT s.id FROM board_entries s WHERE s.supersedes = e.id) AS superseded_by
FROM board_entries e
WHERE e.id = ?1;

-- Reads: ?1 agent, ?2 scope, ?3 seq to read past, then the optional filters, each NULL when not given:
-- ?4 kinds (JSON list), ?5 author, ?6 tags (JSON list, any of them); ?7 include superseded (0/1), ?8 limit.
-- The walk is board_entries_seq from (scope, seq) on; the filters only drop rows along it.

-- name: board.unread_entries
SELECT e.*, (SELECT s.id FROM board_entries s WHERE s.supersedes = e.id) AS superseded_by
FROM board_entries e
WHERE e.scope = ?2 AND e.seq > ?3
  AND e.author != ?1
  AND NOT EXISTS (SELECT 1 FROM board_entries s WHERE s.supersedes = e.id)
  AND NOT EXISTS (SELECT 1 FROM board_reads r WHERE r.agent = ?1 AND r.scope = e.scope AND r.seq = e.seq)
  AND (?4 IS NULL OR e.kind IN (SELECT value FROM json_each(?4)))
  AND (?5 IS NULL OR e.author = ?5)
  AND (?6 IS NULL OR EXISTS (SELECT 1 FROM json_each(e.tags) t WHERE t.value IN (SELECT value FROM json_each(?6))))
ORDER BY e.seq
LIMIT ?8;

-- name: board.entries_since
SELECT e.*, (SELECT s.id FROM board_entries s WHERE s.supersedes = e.id) AS superseded_by
FROM board_entries e
WHERE e.scope = ?2 AND e.seq > ?3
  AND (?7 OR NOT EXISTS (SELECT 1 FROM board_entries s WHERE s.supersedes = e.id))
  AND (?4 IS NULL OR e.kind IN (SELECT value FROM json_each(?4)))
  AND (?5 IS NULL OR e.author = ?5)
  AND (?6 IS NULL OR EXISTS (SELECT 1 FROM json_each(e.tags) t WHERE t.value IN (SELECT value FROM json_each(?6))))
ORDER BY e.seq
LIMIT ?8;

-- Agent ?1's unread entries in scope ?2 past its cursor ?3: how many, the first and the newest seq.
-- name: board.unread_span
SELECT COUNT(*) AS unread, MIN(e.seq) AS first, MAX(e.seq) AS newest
FROM board_entries e
WHERE e.scope = ?2 AND e.seq > ?3
  AND e.author != ?1
  AND NOT EXISTS (SELECT 1 FROM board_entries s WHERE s.supersedes = e.id)
  AND NOT EXISTS (SELECT 1 FROM board_reads r WHERE r.agent = ?1 AND r.scope = e.scope AND r.seq = e.seq);

-- The ?4 newest of the same entries, for the hooks' digest.
-- name: board.newest_unread
SELECT e.seq, e.kind, e.author, e.title, e.body
FROM board_entries e
WHERE e.scope = ?2 AND e.seq > ?3
  AND e.author != ?1
  AND NOT EXISTS (SELECT 1 FROM board_entries s WHERE s.supersedes = e.id)
  AND NOT EXISTS (SELECT 1 FROM board_reads r WHERE r.agent = ?1 AND r.scope = e.scope AND r.seq = e.seq)
ORDER BY e.seq DESC
LIMIT ?4;

-- Agent ?1's unread entries in every scope it follows, counted per scope.
-- name: board.unread_by_scope
SELECT e.scope, COUNT(*)
FROM board_cursors c
JOIN board_entries e ON e.scope = c.scope AND e.seq > c.seq
WHERE c.agent = ?1
  AND e.author != ?1
  AND NOT EXISTS (SELECT 1 FROM board_entries s WHERE s.supersedes = e.id)
  AND NOT EXISTS (SELECT 1 FROM board_reads r WHERE r.agent = ?1 AND r.scope = e.scope AND r.seq = e.seq)
GROUP BY e.scope
ORDER BY e.scope;

-- name: board.mark_read
INSERT OR IGNORE INTO board_reads (agent, scope, seq) VALUES (?1, ?2, ?3);

-- name: board.move_cursor
UPDATE board_cursors SET seq = ?3 WHERE agent = ?1 AND scope = ?2;

-- Entries up to the cursor need no mark of their own any more.
-- name: board.forget_reads
DELETE FROM board_reads WHERE agent = ?1 AND scope = ?2 AND seq <= ?3;

-- ============================================================================ handoffs

-- name: handoffs.create
INSERT INTO handoffs (sender, task, summary, next_step, done, remaining, blockers, files, branch, scope,
                      addressed, recipients, locks, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
RETURNING *;

-- name: handoffs.set_message
UPDATE handoffs SET message_id = ?2 WHERE id = ?1;

-- name: handoffs.take
UPDATE handoffs SET taken_by = ?2, taken_at = ?3 WHERE id = ?1;

-- name: handoffs.by_id
SELECT * FROM handoffs WHERE id = ?1;

-- name: handoffs.for_task
SELECT * FROM handoffs WHERE task = ?1 ORDER BY id DESC;

-- name: handoffs.addressee
SELECT role, capabilities FROM agents WHERE name = ?1;

-- The open handoffs agent ?2 would resume, newest first, at most ?3: addressed to one of its addresses
-- ?1 (a JSON list: its name, '@role', '@roles'), as `to` gave them or as they resolved, or its own
-- checkpoint (resolved to nobody) with no newer handoff of its own for that task (handed on: stale
-- for it). Every open handoff counts: this walks handoffs_open newest first to the ?3-th match (about
-- 1 ms per 1,000 open handoffs that do not match); the tests on '[]' spare a checkpoint the JSON walks.
-- name: handoffs.open_for
SELECT h.*
FROM handoffs h
WHERE h.taken_by IS NULL
  AND (
    (h.sender = ?2 AND h.recipients = '[]'
     AND NOT EXISTS (SELECT 1 FROM handoffs n WHERE n.task = h.task AND n.sender = ?2 AND n.id > h.id))
    OR (h.addressed != '[]' AND (
      EXISTS (SELECT 1 FROM json_each(h.recipients) r WHERE r.value IN (SELECT value FROM json_each(?1)))
      OR EXISTS (SELECT 1 FROM json_each(h.addressed) a WHERE a.value IN (SELECT value FROM json_each(?1)))
    ))
  )
ORDER BY h.id DESC
LIMIT ?3;

-- The newest handoff agent ?1 took and has not handed on since (a taker that crashed gets it back).
-- name: handoffs.taken_back
SELECT h.*
FROM handoffs h
WHERE h.taken_by = ?1
  AND NOT EXISTS (SELECT 1 FROM handoffs n WHERE n.task = h.task AND n.sender = ?1 AND n.id > h.id)
ORDER BY h.id DESC
LIMIT 1;

-- ============================================================================ digest (hooks)

-- What the hooks put in front of an agent on every prompt: each walks an index from the agent's
-- name, so the digest costs the same on a store of a million messages. The board's and the
-- handoffs' parts are the board.* and handoffs.* queries their tools use.

-- The tables this store has: an older store lacks some areas, which then add nothing.
-- name: digest.tables
SELECT name FROM sqlite_master WHERE type = 'table';

-- Deliveries agent ?1 could poll at time ?2 (queued, or a lapsed lease): how many, and the newest.
-- name: digest.waiting
SELECT COUNT(*), MAX(d.id)
FROM deliveries d
WHERE d.recipient = ?1 AND d.state IN ('queued', 'leased')
  AND (d.state = 'queued' OR d.visible_at <= ?2);

-- The ?3 most urgent of them.
-- name: digest.waiting_urgent
SELECT d.id, m.id, m.sender, m.subject, m.kind, m.priority, m.body
FROM deliveries d
JOIN messages m ON m.id = d.message_id
WHERE d.recipient = ?1 AND d.state IN ('queued', 'leased')
  AND (d.state = 'queued' OR d.visible_at <= ?2)
ORDER BY d.priority DESC, d.id
LIMIT ?3;

-- The ?3 newest of them.
-- name: digest.waiting_latest
SELECT d.id, m.id, m.sender, m.subject, m.kind, m.priority, m.body
FROM deliveries d
JOIN messages m ON m.id = d.message_id
WHERE d.recipient = ?1 AND d.state IN ('queued', 'leased')
  AND (d.state = 'queued' OR d.visible_at <= ?2)
ORDER BY d.id DESC
LIMIT ?3;

-- The leases agent ?1 holds at time ?2, not yet acked.
-- name: digest.leases
SELECT m.id, m.sender, m.subject, d.visible_at
FROM deliveries d
JOIN messages m ON m.id = d.message_id
WHERE d.recipient = ?1 AND d.state IN ('queued', 'leased')
  AND d.state = 'leased' AND d.visible_at > ?2
ORDER BY d.id;

-- The live locks agent ?1 holds at time ?2.
-- name: digest.locks
SELECT resource, mode, token, expires_at
FROM locks
WHERE holder = ?1 AND expires_at > ?2
ORDER BY resource;

-- ============================================================================ locks


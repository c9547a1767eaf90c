-- The PostgreSQL dialect of every query the rules name (teamroom.store.rules), one block per query,
-- with the same names as sqlite/queries.sql (tests/postgres/test_queries.py checks that):
--
--   -- name: area.what
--   SELECT ...;
--
-- Parameters are written as on SQLite (? or ?N) and translated once when this file is loaded
-- (store/postgres/tx.py). A list arrives as an array: say its type (?1::text[]), as for a parameter
-- that can be NULL where nothing else gives its type (?2::text IS NULL). Sums are cast back to
-- bigint (SUM gives numeric). Sections follow the rules' modules, in the order of the SQLite file.

-- ============================================================================ agents, sessions

-- name: agents.seen_first
-- A name that calls any tool is known from then on (Tx.touch); 0 rows when it already was.
INSERT INTO agents (name, first_seen, last_seen) VALUES (?1, ?2, ?2) ON CONFLICT (name) DO NOTHING;

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

-- name: agents.list
-- The agents of role ?2, of capability ?3, seen since ?4 (NULL: any), by name, each with the
-- deliveries it can poll at ?1 (unread) and those under a live lease, counted per agent shown
-- through the live deliveries index.
SELECT a.name, a.role, a.capabilities, a.description, a.status, a.task, a.note, a.last_seen,
       COUNT(CASE WHEN d.state = 'queued' OR d.visible_at <= ?1 THEN 1 END) AS unread,
       COUNT(CASE WHEN d.state = 'leased' AND d.visible_at > ?1 THEN 1 END) AS leased
  FROM agents a
  LEFT JOIN deliveries d ON d.recipient = a.name AND d.state IN ('queued', 'leased')
 WHERE (?2::text IS NULL OR a.role = ?2)
   AND (?3::text IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(a.capabilities::jsonb) c
                                     WHERE c = ?3))
   AND (?4::bigint IS NULL OR a.last_seen > ?4)
 GROUP BY a.name
 ORDER BY a.name;

-- name: agents.locks
-- The live locks (at ?2) of the holders in the list ?1, by holder and resource.
SELECT holder, resource FROM locks
 WHERE holder = ANY(?1::text[]) AND expires_at > ?2
 ORDER BY holder, resource;

-- name: agents.set_status
-- One row only when something changed (the caller logs the change then).
UPDATE agents SET status = COALESCE(?2, status), task = COALESCE(?3, task), note = COALESCE(?4, note)
 WHERE name = ?1
   AND (status IS DISTINCT FROM COALESCE(?2, status) OR task IS DISTINCT FROM COALESCE(?3, task)
        OR note IS DISTINCT FROM COALESCE(?4, note));

-- name: sessions.available
-- Whether the store has the sessions table yet (a store older than migration 0004 has not).
SELECT 1 WHERE to_regclass('sessions') IS NOT NULL;

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

-- name: messages.all_members
-- @all: every agent but the sender seen since ?2.
SELECT name FROM agents WHERE name != ?1 AND last_seen > ?2 ORDER BY name;

-- name: messages.role_members
-- @ROLE: agents whose role or a capability is one of the names in the list ?2.
SELECT name FROM agents
 WHERE name != ?1
   AND (role = ANY(?2::text[])
        OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(capabilities::jsonb) c WHERE c = ANY(?2::text[])))
 ORDER BY name;

-- name: messages.roles
SELECT role FROM agents WHERE role IS NOT NULL;

-- name: messages.by_idempotency_key
SELECT id, thread_id, recipients FROM messages WHERE sender = ?1 AND idempotency_key = ?2;

-- name: messages.original
SELECT sender, thread_id FROM messages WHERE id = ?1;

-- name: messages.insert
-- A message without a thread (?8 NULL) starts its own, named after its id: the id is drawn first,
-- so the INSERT knows it, no second statement. Parameters that may be NULL say their type (an
-- untyped one in a SELECT list is text).
INSERT INTO messages (id, sender, recipients, subject, body, kind, payload, priority, thread_id, reply_to,
                      idempotency_key, max_attempts, expires_at, sent_at)
SELECT n.id, ?1, ?2, ?3, ?4, ?5, ?6, ?7::integer, COALESCE(?8, 'm' || n.id), ?9::bigint, ?10, ?11::integer,
       ?12::bigint, ?13::bigint
  FROM (SELECT nextval('messages_id_seq') AS id) n
RETURNING id, thread_id;

-- name: messages.insert_delivery
INSERT INTO deliveries (message_id, recipient, state, priority, max_attempts, visible_at, expires_at, updated_at)
VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7);

-- name: messages.settle
-- Ack a live delivery without its receipt (the receipt is kept: a later ack with it is a no-op).
UPDATE deliveries SET state = 'acked', updated_at = ?1
 WHERE message_id = ?2 AND recipient = ?3 AND state IN ('queued', 'leased');

-- name: messages.retire
-- Dead or expired (?1), with the reason why.
UPDATE deliveries SET state = ?1, reason = ?2, receipt = NULL, updated_at = ?3 WHERE id = ?4;

-- name: messages.failed_message
SELECT sender, subject, thread_id FROM messages WHERE id = ?1;

-- name: messages.lapsed
-- Leases whose deadline has passed (the sweep).
SELECT id, message_id, recipient, attempt, max_attempts, expires_at FROM deliveries
 WHERE state = 'leased' AND visible_at <= ?1;

-- name: messages.requeue_lapsed
UPDATE deliveries SET state = 'queued', updated_at = ?1 WHERE id = ?2;

-- name: messages.expired_queued
-- Queued deliveries past their TTL (the sweep; lapsed leases are found by messages.lapsed).
SELECT id, message_id, recipient, attempt, max_attempts, expires_at FROM deliveries
 WHERE state IN ('queued', 'leased') AND expires_at IS NOT NULL AND expires_at <= ?1 AND state = 'queued';

-- name: messages.lease_ready
-- Up to ?5 deliveries agent ?1 may lease at ?2, highest priority first, then oldest; optionally only
-- of the kinds in the list ?3 and of thread ?4 (NULL: any).
SELECT d.id, d.message_id, d.recipient, d.attempt, d.max_attempts, d.expires_at,
       m.sender, m.recipients, m.subject, m.body, m.kind, m.payload, m.priority, m.thread_id, m.reply_to,
       m.sent_at
  FROM deliveries d JOIN messages m ON m.id = d.message_id
 WHERE d.recipient = ?1 AND d.state IN ('queued', 'leased') AND d.visible_at <= ?2
   AND (?3::text[] IS NULL OR m.kind = ANY(?3::text[]))
   AND (?4::text IS NULL OR m.thread_id = ?4)
 ORDER BY d.priority DESC, d.id
 LIMIT ?5;

-- name: messages.lease
UPDATE deliveries SET state = 'leased', attempt = ?1, receipt = ?2, visible_at = ?3, lease_ms = ?4, updated_at = ?5
 WHERE id = ?6;

-- name: messages.next_ready_at
-- When agent ?1's next live delivery (of the kinds ?2, of thread ?3; NULL: any) may be leased.
SELECT MIN(d.visible_at)
  FROM deliveries d JOIN messages m ON m.id = d.message_id
 WHERE d.recipient = ?1 AND d.state IN ('queued', 'leased')
   AND (?2::text[] IS NULL OR m.kind = ANY(?2::text[]))
   AND (?3::text IS NULL OR m.thread_id = ?3);

-- name: messages.delivery
SELECT id, message_id, recipient, state, attempt, max_attempts, expires_at, visible_at, receipt
  FROM deliveries WHERE id = ?1;

-- name: messages.ack
-- The common case in one statement: receipt ?3 is agent ?4's current, live lease of delivery ?2.
UPDATE deliveries SET state = 'acked', updated_at = ?1
 WHERE id = ?2 AND receipt = ?3 AND recipient = ?4
   AND state IN ('queued', 'leased') AND state = 'leased' AND visible_at > ?1
RETURNING message_id, attempt;

-- name: messages.nack
UPDATE deliveries SET state = 'queued', visible_at = ?1, reason = ?2, updated_at = ?3 WHERE id = ?4;

-- name: messages.renew_leases
-- Every live lease of agent ?2, extended by its own duration from ?1.
UPDATE deliveries SET visible_at = ?1 + lease_ms, updated_at = ?1
 WHERE recipient = ?2 AND state IN ('queued', 'leased') AND state = 'leased' AND visible_at > ?1;

-- name: messages.unread
SELECT COUNT(*) FROM deliveries
 WHERE recipient = ?1 AND state IN ('queued', 'leased') AND (state = 'queued' OR visible_at <= ?2);

-- name: messages.thread
SELECT * FROM messages WHERE thread_id = ?1 ORDER BY id LIMIT ?2;

-- name: messages.thread_deliveries
-- The deliveries of the messages whose ids are in the list ?1.
SELECT message_id, recipient, state, attempt, visible_at FROM deliveries
 WHERE message_id = ANY(?1::bigint[])
 ORDER BY id;

-- name: messages.inbox
SELECT m.*, d.recipient, d.state, d.attempt, d.visible_at
  FROM deliveries d JOIN messages m ON m.id = d.message_id
 WHERE d.recipient = ?1 AND d.state IN ('queued', 'leased')
 ORDER BY d.priority DESC, d.id
 LIMIT ?2;

-- ============================================================================ cli and web reads

-- name: cli.scope_names
SELECT name FROM board_scopes ORDER BY name;

-- name: web.recent_threads
-- Threads by their newest message, among the newest ?1 messages (walked by id, no scan); ?2 of them.
SELECT thread_id, MAX(id) AS last_id
  FROM (SELECT id, thread_id FROM messages ORDER BY id DESC LIMIT ?1) recent
 GROUP BY thread_id
 ORDER BY last_id DESC
 LIMIT ?2;

-- name: web.board_scopes
SELECT name FROM board_scopes ORDER BY opened_at, name;

-- ============================================================================ events

-- name: events.append
-- Only write transactions append, under the write lock: ids become visible in order (0001_core.sql).
INSERT INTO events (at, agent, kind, subject, data) VALUES (?, ?, ?, ?, ?);

-- name: events.after
-- Up to ?4 events after id ?1, in order; only agent ?2's and of the kinds in the list ?3 (NULL: any).
SELECT * FROM events
 WHERE id > ?1 AND (?2::text IS NULL OR agent = ?2) AND (?3::text[] IS NULL OR kind = ANY(?3::text[]))
 ORDER BY id
 LIMIT ?4;

-- name: events.newest
-- The newest ?3 events (still in order), filtered as events.after.
SELECT * FROM (
    SELECT * FROM events
     WHERE id > 0 AND (?1::text IS NULL OR agent = ?1) AND (?2::text[] IS NULL OR kind = ANY(?2::text[]))
     ORDER BY id DESC
     LIMIT ?3) newest
 ORDER BY id;

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
INSERT INTO board_cursors (agent, scope, seq) VALUES (?1, ?2, 0) ON CONFLICT DO NOTHING;

-- name: board.cursor
SELECT seq FROM board_cursors WHERE agent = ?1 AND scope = ?2;

-- name: board.cursors
SELECT scope, seq FROM board_cursors WHERE agent = ?1;

-- name: board.post
-- ?9 (the entry superseded) may be NULL: its type is said.
INSERT INTO board_entries (scope, seq, author, kind, title, body, tags, refs, supersedes, posted_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9::bigint, ?10)
RETURNING id;

-- name: board.replaceable
SELECT e.id, e.scope, e.author, e.kind,
       (SELECT s.id FROM board_entries s WHERE s.supersedes = e.id) AS superseded_by
FROM board_entries e
WHERE e.id = ?1;

-- Reads: ?1 agent, ?2 scope, ?3 seq to read past, then the optional filters, each NULL when not given:
-- ?4 kinds (a list), ?5 author, ?6 tags (a list, any of them); ?7 include superseded, ?8 limit.
-- The walk is board_entries_seq from (scope, seq) on; the filters only drop rows along it.

-- name: board.unread_entries
SELECT e.*, (SELECT s.id FROM board_entries s WHERE s.supersedes = e.id) AS superseded_by
FROM board_entries e
WHERE e.scope = ?2 AND e.seq > ?3
  AND e.author != ?1
  AND NOT EXISTS (SELECT 1 FROM board_entries s WHERE s.supersedes = e.id)
  AND NOT EXISTS (SELECT 1 FROM board_reads r WHERE r.agent = ?1 AND r.scope = e.scope AND r.seq = e.seq)
  AND (?4::text[] IS NULL OR e.kind = ANY(?4::text[]))
  AND (?5::text IS NULL OR e.author = ?5)
  AND (?6::text[] IS NULL
       OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(e.tags::jsonb) t WHERE t = ANY(?6::text[])))
ORDER BY e.seq
LIMIT ?8;

-- name: board.entries_since
SELECT e.*, (SELECT s.id FROM board_entries s WHERE s.supersedes = e.id) AS superseded_by
FROM board_entries e
WHERE e.scope = ?2 AND e.seq > ?3
  AND (?7::boolean OR NOT EXISTS (SELECT 1 FROM board_entries s WHERE s.supersedes = e.id))
  AND (?4::text[] IS NULL OR e.kind = ANY(?4::text[]))
  AND (?5::text IS NULL OR e.author = ?5)
  AND (?6::text[] IS NULL
       OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(e.tags::jsonb) t WHERE t = ANY(?6::text[])))
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
INSERT INTO board_reads (agent, scope, seq) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING;

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
-- ?1 (a list: its name, '@role', '@roles'), as `to` gave them or as they resolved, or its own
-- checkpoint (resolved to nobody) with no newer handoff of its own for that task (handed on: stale
-- for it). Every open handoff counts: this walks handoffs_open newest first to the ?3-th match.
-- name: handoffs.open_for
SELECT h.*
FROM handoffs h
WHERE h.taken_by IS NULL
  AND (
    (h.sender = ?2 AND h.recipients = '[]'
     AND NOT EXISTS (SELECT 1 FROM handoffs n WHERE n.task = h.task AND n.sender = ?2 AND n.id > h.id))
    OR (h.addressed != '[]' AND (
      EXISTS (SELECT 1 FROM jsonb_array_elements_text(h.recipients::jsonb) r WHERE r = ANY(?1::text[]))
      OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(h.addressed::jsonb) a WHERE a = ANY(?1::text[]))
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

-- What the hooks put in front of an agent on every prompt. The board's and the handoffs' parts are
-- the board.* and handoffs.* queries their tools use.

-- The tables this store has (in its schema): an older store lacks some areas, which then add nothing.
-- name: digest.tables
SELECT tablename FROM pg_tables WHERE schemaname = current_schema();

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

-- A row is one holder's lock on one normalised resource (migrations/0002_locks.sql); `prefix` and
-- `rsuffix` (the literal end of the last segment, reversed) exist to find the locks a resource
-- could overlap by index. SQL only narrows: rules/locks.py decides overlap with teamroom.paths.
--
-- The candidate queries (locks.at, locks.paths_under, locks.globs_over_paths, locks.globs_above,
-- locks.globs_under) read the same columns, in the order of locks_kind_prefix (prefix, rsuffix,
-- id), so that the next page starts where the last ended, and take the same first eight parameters:
--   ?1 a holder whose locks are not in the way ('' for none)
--   ?2 only the locks of this holder (NULL: anyone's)
--   ?3 a mode that is not in the way ('shared' for a shared claim, '' for none)
--   ?4 only locks that expire after this (ms; 0 includes the expired ones a claim takes over)
--   ?5, ?6, ?7 the (prefix, rsuffix, id) of the last row of the page before ('', '', 0 for the first)
--   ?8 the most rows in this page
-- A range with no end is NULL. Text compared with text that is not a column says COLLATE "C": a
-- parameter or an array's element has the database's default collation, which need not be byte order.
-- Where SQLite sets rows aside with GLOB, this uses LIKE on the same loosened pattern, its '*' and
-- '?' made '%' and '_' (and a literal '%', '_' or '\' escaped).

-- name: locks.at
-- The locks on the same path or name (?9 kind, ?10 resource); for a glob claim, on the path that
-- is its literal prefix, when that path ends with the claim's literal end (?11, reversed; '' for any).
SELECT id, resource, kind, prefix, rsuffix, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE kind = ?9 AND prefix = ?10 AND left(rsuffix, length(?11)) = ?11
  AND (prefix, rsuffix, id) > (?5, ?6, ?7::bigint)
  AND holder != ?1 AND (?2::text IS NULL OR holder = ?2) AND mode != ?3 AND expires_at > ?4
ORDER BY prefix, rsuffix, id
LIMIT ?8;

-- name: locks.paths_under
-- Paths a glob claim (?12, its normal form) could match: at or after ?9 and before ?10 in byte
-- order (NULL: no end), whose last segment ends with the claim's literal end (?11, reversed), with
-- as many segments as the claim's paths have (?13 at least, ?14 at most, NULL: no most: counted
-- by their '/'), and that the claim loosened ('*' crossing '/', '**' segments folded into '*')
-- matches. Texts with '[' (a class, or an escaped character) or starting './' are left to the rules.
SELECT id, resource, kind, prefix, rsuffix, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE kind = 'path' AND prefix >= GREATEST(?9 COLLATE "C", ?5) AND (?10::text IS NULL OR prefix < ?10)
  AND left(rsuffix, length(?11)) = ?11
  AND (left(prefix, 2) = './'
       OR length(prefix) - length(replace(prefix, '/', '')) >= GREATEST(?13 - 1, 0)
          AND (?14::integer IS NULL OR length(prefix) - length(replace(prefix, '/', '')) < ?14))
  AND (strpos(?12, '[') > 0 OR left(?12, 2) = './' OR strpos(prefix, '[') > 0 OR left(prefix, 2) = './'
       OR prefix LIKE replace(replace(replace(replace(replace(
              replace(replace(replace(?12, '/**/', '/*'), '**/', '*'), '/**', '*'),
              '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_'))
  AND (prefix, rsuffix, id) > (?5, ?6, ?7::bigint)
  AND holder != ?1 AND (?2::text IS NULL OR holder = ?2) AND mode != ?3 AND expires_at > ?4
ORDER BY prefix, rsuffix, id
LIMIT ?8;

-- name: locks.globs_over_paths
-- Globs the claimed paths could match: for each [prefix, end] of ?9 (an array of pairs: an
-- ancestor of a claimed path, and an end of its last segment, reversed), the globs with that
-- literal prefix and end, one index search a pair. A glob none of the claimed paths (?10) could
-- match is set aside here, by the glob loosened as in locks.paths_under (globs with '[' or
-- starting './' are kept), with one LIKE a row: the paths joined by newlines (which no resource
-- has) must hold a match of the loosened glob between two newlines.
SELECT locks.id, locks.resource, locks.kind, locks.prefix, locks.rsuffix, locks.holder, locks.mode, locks.token,
       locks.reason, locks.ttl_ms, locks.acquired_at, locks.expires_at
FROM (SELECT ?9::text[] AS pairs) given
CROSS JOIN LATERAL generate_subscripts(given.pairs, 1) AS pair
JOIN locks ON locks.kind = 'glob' AND locks.prefix = given.pairs[pair][1] AND locks.rsuffix = given.pairs[pair][2]
WHERE (locks.prefix, locks.rsuffix, locks.id) > (?5, ?6, ?7::bigint)
  AND locks.holder != ?1 AND (?2::text IS NULL OR locks.holder = ?2) AND locks.mode != ?3 AND locks.expires_at > ?4
  AND (strpos(locks.resource, '[') > 0 OR left(locks.resource, 2) = './'
       OR (E'\n' || array_to_string(?10::text[], E'\n') || E'\n') LIKE
          ('%' || E'\n' || replace(replace(replace(replace(replace(
              replace(replace(replace(locks.resource, '/**/', '/*'), '**/', '*'), '/**', '*'),
              '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_') || E'\n' || '%'))
ORDER BY locks.prefix, locks.rsuffix, locks.id
LIMIT ?8;

-- name: locks.globs_above
-- Globs a glob claim could overlap from above: their literal prefix is one of ?9 (the ancestors of
-- the claim's prefix) and their literal end is one of ?10 (reversed) or starts with ?11 (reversed;
-- before ?12, NULL: no end). Two index searches, merged in order.
-- ?13 1: only globs with '[' (for a listing, which has locks.live_under count the others).
SELECT id, resource, kind, prefix, rsuffix, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE kind = 'glob' AND prefix = ANY(?9::text[]) AND prefix >= ?5
  AND rsuffix = ANY(?10::text[])
  AND (prefix, rsuffix, id) > (?5, ?6, ?7::bigint)
  AND (?13 = 0 OR strpos(resource, '[') > 0)
  AND holder != ?1 AND (?2::text IS NULL OR holder = ?2) AND mode != ?3 AND expires_at > ?4
UNION ALL
SELECT id, resource, kind, prefix, rsuffix, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE kind = 'glob' AND prefix = ANY(?9::text[]) AND prefix >= ?5
  AND rsuffix >= ?11 AND (?12::text IS NULL OR rsuffix < ?12)
  AND (prefix, rsuffix, id) > (?5, ?6, ?7::bigint)
  AND (?13 = 0 OR strpos(resource, '[') > 0)
  AND holder != ?1 AND (?2::text IS NULL OR holder = ?2) AND mode != ?3 AND expires_at > ?4
ORDER BY prefix, rsuffix, id
LIMIT ?8;

-- name: locks.globs_under
-- Globs whose literal prefix is at or after ?9 and before ?10 (NULL: no end), and whose literal
-- end is one of ?11 (reversed) or starts with ?12 (reversed): the ends of a glob claim's.
-- ?13 1: only globs with '[', as in locks.globs_above. ?14, ?15: the fewest and most segments
-- the claim's paths have (NULL: no most); a glob whose paths cannot have as many is set aside
-- (its fewest: its segments but the '**', and at least those of its prefix, which the index has;
-- its most, without '**': its segments), segments counted by their '/'.
SELECT id, resource, kind, prefix, rsuffix, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE kind = 'glob' AND prefix >= GREATEST(?9 COLLATE "C", ?5) AND (?10::text IS NULL OR prefix < ?10)
  AND (rsuffix = ANY(?11::text[]) OR left(rsuffix, length(?12)) = ?12)
  AND (prefix, rsuffix, id) > (?5, ?6, ?7::bigint)
  AND (?13 = 0 OR strpos(resource, '[') > 0)
  AND (?15::integer IS NULL OR left(prefix, 2) = './' OR length(prefix) - length(replace(prefix, '/', '')) < ?15)
  AND (left(resource, 2) = './'
       OR (?15::integer IS NULL OR length(resource) - length(replace(resource, '/', '')) + 1
                                   - (length(resource) - length(replace(resource, '**', ''))) / 2 <= ?15)
          AND (strpos(resource, '**') > 0 OR length(resource) - length(replace(resource, '/', '')) + 1 >= ?14))
  AND holder != ?1 AND (?2::text IS NULL OR holder = ?2) AND mode != ?3 AND expires_at > ?4
ORDER BY prefix, rsuffix, id
LIMIT ?8;

-- name: locks.next_tokens
-- Reserve ?1 fencing tokens; the last one reserved.
UPDATE fence SET token = token + ?1 WHERE id = 1 RETURNING token;

-- name: locks.insert
INSERT INTO locks (resource, kind, prefix, rsuffix, holder, mode, token, reason, ttl_ms, acquired_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11);

-- name: locks.extend
-- A renewal by claim: a new expiry and TTL, the reason kept unless a new one is given.
UPDATE locks SET expires_at = ?2, ttl_ms = ?3, reason = COALESCE(?4, reason) WHERE id = ?1;

-- name: locks.delete
DELETE FROM locks WHERE id = ?1;

-- name: locks.own
-- The locks of holder ?1 on the resources of ?2, live or not.
SELECT id, resource, kind, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE holder = ?1 AND resource = ANY(?2::text[]);

-- name: locks.all_own
-- Every lock of holder ?1, live or not, by resource.
SELECT id, resource, kind, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE holder = ?1
ORDER BY resource;

-- name: locks.held_elsewhere
-- The first live lock (by token) on one of ?1 held by another holder than ?2, at ?3.
SELECT resource, holder, token, expires_at
FROM locks
WHERE resource = ANY(?1::text[]) AND holder != ?2 AND expires_at > ?3
ORDER BY token
LIMIT 1;

-- name: locks.held_by
-- The live locks of holder ?1 at ?2, by resource; at most ?3 (-1: all).
SELECT id, resource, kind, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE holder = ?1 AND expires_at > ?2
ORDER BY resource
LIMIT NULLIF(?3, -1);

-- name: locks.held_by_count
SELECT COUNT(*) FROM locks WHERE holder = ?1 AND expires_at > ?2;

-- name: locks.live
-- The live locks at ?1, by resource then token; at most ?2 (-1: all).
SELECT id, resource, kind, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE expires_at > ?1
ORDER BY resource, token
LIMIT NULLIF(?2, -1);

-- name: locks.live_count
SELECT COUNT(*) FROM locks WHERE expires_at > ?1;

-- name: locks.live_under
-- What a glob 'P/**' overlaps, decided here: the live locks (at ?1) of ?2 (NULL: anyone) on the
-- path P (?3) or on anything under it (?4 <= resource < ?5 in byte order, P itself and what starts
-- with 'P/'); for '**' (?3 NULL, ?4 '', ?5 NULL) on every path and glob. Names never overlap a
-- glob, and globs with '[' are left to the rules (a class may match nothing). By resource then
-- token, at most ?6 (-1: all), through locks_resource so that it stops there.
SELECT id, resource, kind, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE resource >= ?4 AND (?5::text IS NULL OR resource < ?5)
  AND (?3::text IS NULL OR resource = ?3 OR resource >= ?3 || '/')
  AND kind != 'name' AND (kind = 'path' OR strpos(resource, '[') = 0)
  AND expires_at > ?1 AND (?2::text IS NULL OR holder = ?2)
ORDER BY resource, token
LIMIT NULLIF(?6, -1);

-- name: locks.live_under_count
SELECT COUNT(*)
FROM locks
WHERE resource >= ?4 AND (?5::text IS NULL OR resource < ?5)
  AND (?3::text IS NULL OR resource = ?3 OR resource >= ?3 || '/')
  AND kind != 'name' AND (kind = 'path' OR strpos(resource, '[') = 0)
  AND expires_at > ?1 AND (?2::text IS NULL OR holder = ?2);

-- name: locks.live_paths_ending
-- What a glob 'P/**/*S' overlaps among paths, decided here: the live locks (at ?1) of ?2 (NULL:
-- anyone) on paths at or after ?3 and before ?4 (NULL: no end) whose last segment ends with S (?5,
-- reversed). By resource (a path's prefix) then token, at most ?6 (-1: all).
SELECT id, resource, kind, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
FROM locks
WHERE kind = 'path' AND prefix >= ?3 AND (?4::text IS NULL OR prefix < ?4) AND left(rsuffix, length(?5)) = ?5
  AND expires_at > ?1 AND (?2::text IS NULL OR holder = ?2)
ORDER BY prefix, token
LIMIT NULLIF(?6, -1);

-- name: locks.live_paths_ending_count
SELECT COUNT(*)
FROM locks
WHERE kind = 'path' AND prefix >= ?3 AND (?4::text IS NULL OR prefix < ?4) AND left(rsuffix, length(?5)) = ?5
  AND expires_at > ?1 AND (?2::text IS NULL OR holder = ?2);

-- name: locks.renew
-- Extend the live locks of holder ?2 at ?1 (those on ?3, or all when NULL) by their own TTL from now.
UPDATE locks SET expires_at = ?1 + ttl_ms
WHERE holder = ?2 AND expires_at > ?1 AND (?3::text[] IS NULL OR resource = ANY(?3::text[]))
RETURNING resource;

-- name: locks.on
-- Holder ?1's lock on resource ?2, if any.
SELECT id, token, mode, expires_at FROM locks WHERE holder = ?1 AND resource = ?2;

-- name: locks.move
UPDATE locks SET holder = ?2, token = ?3, mode = ?4, expires_at = ?5 WHERE id = ?1;

-- name: locks.sweep
-- Drop the locks that expired at or before ?1 (an hour ago: nobody took them over).
DELETE FROM locks WHERE expires_at <= ?1 RETURNING resource, holder, token, expires_at;

-- ============================================================================ give-back

-- name: giveback.lease
-- The live lease of receipt ?2 of delivery ?1 at ?3 back to the queue, visible now, its attempt as
-- before the lease.
UPDATE deliveries SET state = 'queued', attempt = attempt - 1, visible_at = ?3, updated_at = ?3
 WHERE id = ?1 AND receipt = ?2 AND state IN ('queued', 'leased') AND state = 'leased' AND visible_at > ?3
RETURNING message_id, recipient, attempt;

-- name: giveback.lock
-- The lock on ?1 granted with token ?2, if it is still that grant.
DELETE FROM locks WHERE resource = ?1 AND token = ?2
RETURNING holder;

-- ============================================================================ housekeeping

-- name: housekeeping.due
-- Anything the sweep would do at ?1: a lapsed lease, a live delivery past its TTL, a lock expired
-- before ?2 (each through its expiry index).
SELECT 1 WHERE EXISTS (SELECT 1 FROM deliveries WHERE state = 'leased' AND visible_at <= ?1)
    OR EXISTS (SELECT 1 FROM deliveries WHERE state IN ('queued', 'leased') AND expires_at IS NOT NULL
                  AND expires_at <= ?1)
    OR EXISTS (SELECT 1 FROM locks WHERE expires_at <= ?2);

-- ============================================================================ ops

-- Retention, stats, dead letters and the operator's verbs (rules/ops.py); lists are arrays.

-- name: ops.messages_from
-- The ?2 oldest messages after id ?1.
SELECT id, sent_at FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2;

-- name: ops.drop_finished_deliveries
-- The deliveries of the messages in the list ?1 that finished before ?2.
DELETE FROM deliveries
 WHERE message_id = ANY(?1::bigint[])
   AND state IN ('acked', 'dead', 'expired') AND updated_at < ?2;

-- name: ops.count_finished_deliveries
-- What ops.drop_finished_deliveries would delete (gc --dry-run).
SELECT COUNT(*) FROM deliveries
 WHERE message_id = ANY(?1::bigint[])
   AND state IN ('acked', 'dead', 'expired') AND updated_at < ?2;

-- name: ops.drop_finished_messages
-- The messages in the list ?1 with no delivery left; one a handoff names is kept with the handoff.
DELETE FROM messages
 WHERE id = ANY(?1::bigint[])
   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id)
   AND NOT EXISTS (SELECT 1 FROM handoffs h WHERE h.message_id = messages.id);

-- name: ops.count_finished_messages
-- What ops.drop_finished_messages would delete once ops.drop_finished_deliveries had run (?2 the cutoff).
SELECT COUNT(*) FROM messages m
 WHERE m.id = ANY(?1::bigint[])
   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id
                    AND NOT (d.state IN ('acked', 'dead', 'expired') AND d.updated_at < ?2))
   AND NOT EXISTS (SELECT 1 FROM handoffs h WHERE h.message_id = m.id);

-- name: ops.events_from
-- The ?2 oldest events after id ?1, whole: what the archive gets.
SELECT id, at, agent, kind, subject, data FROM events WHERE id > ?1 ORDER BY id LIMIT ?2;

-- name: ops.event_times_from
-- The same, ids and times only (gc --dry-run).
SELECT id, at FROM events WHERE id > ?1 ORDER BY id LIMIT ?2;

-- name: ops.mark_archived
-- Every event up to id ?1 is in the archive (the events_no_delete trigger lets only those go).
UPDATE archive SET events_through = GREATEST(events_through, ?1) WHERE id = 1;

-- name: ops.drop_events
-- The events whose ids are in the list ?1, archived already.
DELETE FROM events WHERE id = ANY(?1::bigint[]);

-- name: ops.archived_through
SELECT events_through FROM archive WHERE id = 1;

-- name: ops.queues
-- Per recipient at ?1: deliveries it could poll (queued, or a lapsed lease), those under a live
-- lease, and the oldest message it could poll.
SELECT recipient,
       COUNT(*) FILTER (WHERE state = 'queued' OR visible_at <= ?1) AS queued,
       COUNT(*) FILTER (WHERE state = 'leased' AND visible_at > ?1) AS leased,
       MIN(message_id) FILTER (WHERE state = 'queued' OR visible_at <= ?1) AS oldest_message
  FROM deliveries
 WHERE state IN ('queued', 'leased')
 GROUP BY recipient;

-- name: ops.dead_by_recipient
SELECT recipient, COUNT(*) AS dead FROM deliveries WHERE state = 'dead' GROUP BY recipient;

-- name: ops.sent_at
-- When each message in the list ?1 was sent.
SELECT id, sent_at FROM messages WHERE id = ANY(?1::bigint[]);

-- name: ops.locks_by_holder
-- Live locks at ?1, per holder.
SELECT holder, COUNT(*) AS locks FROM locks WHERE expires_at > ?1 GROUP BY holder;

-- name: ops.agents
SELECT name, role, last_seen FROM agents ORDER BY name;

-- name: ops.delivery_states
SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state ORDER BY state;

-- name: ops.message_count
SELECT COUNT(*) FROM messages;

-- name: ops.event_span
SELECT COUNT(*) AS n, MIN(id) AS first, MAX(id) AS last FROM events;

-- name: ops.event_at
SELECT at FROM events WHERE id = ?1;

-- Dead letters are read through their partial index (deliveries_dead): `state = 'dead'` matches its
-- predicate, and the planner picks it without being told.

-- name: ops.dead_letters
-- Recipient ?1's dead deliveries (NULL: everyone's), oldest first, at most ?2, with their messages.
SELECT d.id, d.message_id, d.recipient, d.attempt, d.max_attempts, d.reason, d.updated_at,
       m.sender, m.subject, m.kind, m.thread_id, m.sent_at
  FROM deliveries d JOIN messages m ON m.id = d.message_id
 WHERE d.state = 'dead' AND (?1::text IS NULL OR d.recipient = ?1)
 ORDER BY d.id
 LIMIT ?2;

-- name: ops.dead_count
SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND (?1::text IS NULL OR recipient = ?1);

-- name: ops.dead_of
-- The dead deliveries of message ?1 (NULL: any) to recipient ?2 (NULL: any), oldest first.
SELECT id, message_id, recipient, attempt, expires_at FROM deliveries
 WHERE state = 'dead' AND (?1::bigint IS NULL OR message_id = ?1) AND (?2::text IS NULL OR recipient = ?2)
 ORDER BY id;

-- name: ops.redrive
-- Dead delivery ?1 queued again at ?2 as if new (attempts from 0, no receipt); ?3 its TTL deadline.
UPDATE deliveries SET state = 'queued', attempt = 0, visible_at = ?2, receipt = NULL, lease_ms = NULL,
       reason = NULL, expires_at = ?3::bigint, updated_at = ?2
 WHERE id = ?1 AND state = 'dead';

-- name: ops.message
SELECT id FROM messages WHERE id = ?1;

-- name: ops.deliveries_of
SELECT recipient, state FROM deliveries WHERE message_id = ?1 ORDER BY id;

-- name: ops.locks_on
-- Every lock on resource ?1 (normalised; live or expired) of holder ?2 (NULL: any).
SELECT id, resource, holder, mode, token, expires_at FROM locks
 WHERE resource = ?1 AND (?2::text IS NULL OR holder = ?2)
 ORDER BY holder;

-- name: ops.locks_of
-- Every lock of holder ?1, live or expired.
SELECT id, resource, holder, mode, token, expires_at FROM locks WHERE holder = ?1 ORDER BY resource;

-- name: ops.drop_lock
DELETE FROM locks WHERE id = ?1;

-- name: ops.agent
SELECT name, last_seen FROM agents WHERE name = ?1;

-- name: ops.live_deliveries_of
SELECT id, message_id, recipient, attempt, max_attempts, expires_at FROM deliveries
 WHERE recipient = ?1 AND state IN ('queued', 'leased')
 ORDER BY id;

-- name: ops.forget_agent
DELETE FROM agents WHERE name = ?1;

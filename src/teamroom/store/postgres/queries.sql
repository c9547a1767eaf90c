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

-- ============================================================================ handoffs

-- ============================================================================ digest (hooks)

-- ============================================================================ locks

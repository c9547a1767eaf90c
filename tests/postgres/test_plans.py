"""Query plans on PostgreSQL: no statement of any verb scans a table that grows, and the lease
reads its deliveries in the order of the index it walks.

Each statement a workload of every verb ran is explained with its own parameters, after the
tables were filled to a size where a scan costs what it would in a store in use (most deliveries
finished, as they are) and analysed: the plan is the one the planner would really choose.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from teamroom.store import ManualClock
from teamroom.store.postgres.store import PostgresStore
from teamroom.store.postgres.tx import Connection, Query, postgres_queries
from tests.contract.support import claim, handoff, lease, post, read, register, send

pytestmark = pytest.mark.anyio

# A store some weeks in use: 500 agents, 50,000 messages (one in 50 still live; 5,000 more waiting
# for an agent called backlog), 100,000 events, 20,000 locks (one in 10 live, the others lapsed
# lately: the sweep keeps them an hour), 20,000 board entries in 100 scopes, 5,000 handoffs (most
# taken).
FILL = """
INSERT INTO agents (name, role, first_seen, last_seen)
    SELECT 'agent' || g, CASE WHEN g % 5 = 0 THEN 'builder' END, 0, g FROM generate_series(1, 500) g;
INSERT INTO messages (sender, recipients, body, kind, priority, thread_id, max_attempts, sent_at)
    SELECT 'agent' || g % 500, '[]', 'x', 'text', 1, 't' || g % 5000, 5, g FROM generate_series(1, 50000) g;
INSERT INTO deliveries (message_id, recipient, state, priority, max_attempts, visible_at, expires_at, updated_at)
    SELECT id, 'agent' || id % 500, CASE WHEN id % 50 = 0 THEN 'queued' ELSE 'acked' END, 1, 5, id,
           CASE WHEN id % 100 = 0 THEN id END, id
      FROM messages;
INSERT INTO deliveries (message_id, recipient, state, priority, max_attempts, visible_at, updated_at)
    SELECT id, 'backlog', 'queued', id % 4, 5, id, id FROM messages WHERE id <= 5000;
INSERT INTO events (at, agent, kind, subject) SELECT g, 'agent' || g % 500, 'send', 'm' || g
    FROM generate_series(1, 100000) g;
INSERT INTO locks (resource, kind, prefix, rsuffix, holder, mode, token, ttl_ms, acquired_at, expires_at)
    SELECT 'src/d' || g % 100 || '/f' || g || '.py', 'path', 'src/d' || g % 100 || '/f' || g || '.py',
           reverse('f' || g || '.py'), 'agent' || g % 500, 'exclusive', g, 60000, 0,
           CASE WHEN g % 10 = 0 THEN 9000000000000 ELSE 1800010200000 END
      FROM generate_series(1, 20000) g;
INSERT INTO board_scopes (name, owner, opened_at) SELECT 'scope' || g, 'agent' || g, g FROM generate_series(1, 100) g;
INSERT INTO board_entries (scope, seq, author, kind, body, posted_at)
    SELECT 'scope' || (g % 100 + 1), g / 100 + 1, 'agent' || g % 500, 'finding', 'x', g
      FROM generate_series(0, 19999) g;
INSERT INTO handoffs (sender, task, summary, next_step, created_at, taken_by, taken_at)
    SELECT 'agent' || g % 500, 'task' || g, 's', 'n', g, CASE WHEN g % 20 > 0 THEN 'agent' || g % 7 END, g
      FROM generate_series(1, 5000) g;
INSERT INTO board_reads (agent, scope, seq)
    SELECT 'agent' || g % 500, 'scope' || (g % 100 + 1), g FROM generate_series(1, 20000) g;
INSERT INTO sessions (session_id, agent, bound_at)
    SELECT 's' || g, 'agent' || g % 500, g FROM generate_series(1, 5000) g;
ANALYZE;
"""
# The audit log has no index but its id (0001_core.sql: every change writes it, humans read it rarely):
# a read filtered by agent or kind walks it, and the planner may rightly walk it as a scan.
WALKS = {"events.after", "events.newest"}
GROWING = {"messages", "deliveries", "events", "locks", "board_entries", "board_reads", "handoffs", "sessions"}


class Tracing(Connection):
    """The store's connection, keeping every named query it ran with its parameters."""

    __slots__ = ("ran",)

    def __init__(self, raw: Any) -> None:
        super().__init__(raw)
        self.ran: dict[str, tuple[Query, Any]] = {}

    def execute(self, query, params=()):
        if isinstance(query, Query):
            self.ran.setdefault(query.text, (query, params))
        return super().execute(query, params)

    def executemany(self, query, rows):
        rows = list(rows)
        if isinstance(query, Query) and rows:
            self.ran.setdefault(query.text, (query, rows[0]))
        return super().executemany(query, rows)


async def _workload(store: PostgresStore, clock: ManualClock) -> None:
    await register(store, "lead", "lead")
    await register(store, "builder", "builder", ["python"])
    sent = await send(store, "lead", "@builders", "build it", idempotency_key="k1", ttl_seconds=60)
    await send(store, "lead", "builder", "again", reply_to=sent.message_id, priority="high")
    got = await lease(store, "builder", limit=1, kinds=["text"], thread_id=sent.thread_id)
    await store.ack("builder", [got.messages[0].receipt])
    again = await lease(store, "builder", lease_seconds=5)
    await store.nack("builder", again.messages[0].receipt, "later", 1)
    await store.heartbeat("builder", "working", "parser", None)
    await store.agents("lead", None, "python", False)
    await store.thread("lead", sent.thread_id, 10)
    await store.inbox("builder", 10)
    await store.next_ready_in("builder", ["text"], None)
    await store.events(0, 10, "builder", ["lease"])
    await store.events(-1, 10)
    entry = await post(store, "lead", "found it", tags=["db"], refs=["a.py"])
    await post(store, "lead", "found it twice", supersedes=entry.id)
    await read(store, "builder")
    await read(store, "builder", since=0, kinds=["finding"], tags=["db"], author="lead")
    await claim(store, "builder", ["src/auth/**", "README.md"])
    await claim(store, "lead", ["src/auth/login.py"])
    await store.lock_clear_in("lead", ["src/auth/login.py"], "exclusive")
    await store.locks(None, "src/auth/**", None, 10)
    await handoff(store, "builder", "parser", to=["@lead"], transfer_locks=True)
    await store.resume("lead", "parser", None)
    await store.release_lock("lead", None)
    await store.known_names()
    await store.recent_threads(10)
    clock.advance(3 * 60 * 60)  # leases lapse, TTLs pass, the sweep runs
    await register(store, "lead", "lead")


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = [plan["Relation Name"]] if plan["Node Type"] == "Seq Scan" and plan["Relation Name"] in GROWING else []
    for child in plan.get("Plans", ()):
        found += _seq_scans(child)
    return found


async def test_every_statement_of_every_verb_can_read_the_growing_tables_by_an_index(pg_url):
    clock = ManualClock()
    async with PostgresStore(pg_url, clock=clock) as store:
        tracing = store._conn = Tracing(store._conn.raw)
        await _workload(store, clock)
        assert len(tracing.ran) > 40, "the workload ran most of the queries"
        raw = tracing.raw
        raw.execute(FILL, prepare=False)
        scans = {}
        walks = {postgres_queries()[name].text for name in WALKS}
        raw.execute("BEGIN")
        for text, (query, params) in tracing.ran.items():
            if text in walks:
                continue
            plan = raw.execute(f"EXPLAIN (FORMAT JSON) {text}", query.bind(params)).fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            if found := _seq_scans(plan[0]["Plan"]):
                scans[text] = found
        raw.execute("ROLLBACK")
    assert not scans, "\n".join(f"{' '.join(text.split())[:150]}: scans {found}" for text, found in scans.items())


async def test_a_lease_from_a_long_queue_walks_the_ready_index_in_its_order_with_no_sort(pg_url):
    async with PostgresStore(pg_url, clock=ManualClock()) as store:
        await register(store, "a")
        raw = store._conn.raw
        query = store._queries["messages.lease_ready"]
        raw.execute(FILL, prepare=False)
        raw.execute("BEGIN")
        params = ("backlog", 1_800_000_000_000, None, None, 10)
        plan = raw.execute(f"EXPLAIN (FORMAT JSON) {query.text}", query.bind(params)).fetchone()[0]
        raw.execute("ROLLBACK")
    text = json.dumps(plan)
    assert '"Index Name": "deliveries_ready"' in text and '"Node Type": "Sort"' not in text, text

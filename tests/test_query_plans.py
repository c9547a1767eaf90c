"""No hot-path statement scans a table that grows without bound.

Every statement the store runs during a workload is traced, and its plan must reach messages,
deliveries and events through an index (a partial index over live rows counts), so a poll over a
store with a million acked messages costs what it costs over an empty one.
"""

from __future__ import annotations

import sqlite3

import pytest

from teamroom.store import ManualClock, SQLiteStore
from teamroom.store.rules import agents as agent_rules
from teamroom.store.rules import messages as message_rules
from teamroom.store.sqlite import migrations, statements
from teamroom.store.tx import Tx
from teamroom.tools import agents, messages
from tests.plans import full_scans, traced

GROWING = ("messages", "deliveries", "events")
NOW = 1_800_000_000_000
pytestmark = pytest.mark.anyio


async def _workload(store: SQLiteStore, clock: ManualClock) -> None:
    await agents.register(store, "a", role="lead")
    await agents.register(store, "b", role="builder")
    sent = await messages.send(store, "a", "@builders", "x", ttl_seconds=60)
    await messages.send(store, "a", ["b"], "y", idempotency_key="k", max_attempts=1)
    got = (await messages.poll(store, "b", limit=1, lease_seconds=5)).messages
    await messages.nack(store, "b", got[0].receipt)
    got = (await messages.poll(store, "b", limit=10)).messages
    await messages.ack(store, "b", [got[0].receipt])
    await agents.heartbeat(store, "b", status="working")
    await agents.agents(store, "a")
    await messages.thread(store, "a", sent.thread_id)
    await messages.inbox(store, "b")
    await messages.events(store, limit=10)
    await store.next_ready_in("b", None, None)
    clock.advance(120)  # leases lapse, TTLs pass: the sweep runs on the next write
    await agents.heartbeat(store, "a")
    await messages.poll(store, "b", kinds=["text"], thread_id=sent.thread_id)


async def test_no_statement_on_the_hot_path_scans_a_growing_table(db_path):
    clock = ManualClock()
    store = SQLiteStore(db_path, clock=clock)
    await store.open()
    statements = await traced(store, lambda: _workload(store, clock))
    assert len(statements) > 20, "the workload reached the store"
    assert full_scans(db_path, statements, lambda table: table in GROWING) == {}


def _agents_listing_steps(hidden: int) -> int:
    """SQLite VM steps of one agents() call, over a store where ``hidden`` live locks and live deliveries
    belong to a parked handoff and an offline agent, which the listing does not show."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    for _, script in migrations():
        for statement in statements(script):
            conn.execute(statement)
    tx = Tx(conn, NOW)
    for name in ("a", "b"):
        tx.touch(name)
    conn.execute("INSERT INTO agents (name, first_seen, last_seen) VALUES ('gone', 0, 0)")
    sent = message_rules.deliver(tx, "a", ["b", "gone"], "x", subject="s", kind="text", payload={}, priority=1)
    message_id = message_rules.parse_message_ref(sent.message_id)
    conn.executemany(
        "INSERT INTO deliveries (message_id, recipient, state, priority, max_attempts, visible_at, updated_at)"
        " VALUES (?, 'gone', 'queued', 1, 5, 0, 0)",
        [(message_id,)] * hidden,
    )
    conn.executemany(
        "INSERT INTO locks (resource, kind, prefix, rsuffix, holder, mode, token, ttl_ms, acquired_at, expires_at)"
        " VALUES (?1, 'path', ?1, '', ?2, 'exclusive', 0, 60000, ?3, ?3 + 60000)",
        [(f"r{i}", "handoff:h1" if i % 2 else "gone", NOW) for i in range(hidden + 1)],
    )
    conn.execute("UPDATE locks SET holder = 'a' WHERE resource = 'r0'")  # the one lock the listing shows
    steps = 0

    def step() -> None:
        nonlocal steps
        steps += 1

    conn.set_progress_handler(step, 1)
    listed = agent_rules.list_agents(Tx(conn, NOW), None, None, None, False)
    conn.close()
    assert [(e.name, e.locks, e.unread) for e in listed.agents] == [("a", ["r0"], 0), ("b", [], 1)]
    return steps


def test_listing_agents_reads_only_the_locks_and_deliveries_of_the_agents_it_shows():
    """agents() costs the same whether the store holds ten or 20,000 locks and deliveries of others."""
    assert _agents_listing_steps(20_000) <= 1.2 * _agents_listing_steps(10)

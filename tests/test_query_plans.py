"""No hot-path statement scans a table that grows without bound.

Every statement the store runs during a workload is traced, and its plan must reach messages,
deliveries and events through an index (a partial index over live rows counts), so a poll over a
store with a million acked messages costs what it costs over an empty one.
"""

from __future__ import annotations

import pytest

from teamroom.store import ManualClock, SQLiteStore
from teamroom.tools import agents, messages
from tests.plans import full_scans, traced

GROWING = ("messages", "deliveries", "events")
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

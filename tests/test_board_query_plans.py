"""No statement of the board or handoffs scans a whole table: entries and handoffs are kept for good."""

from __future__ import annotations

import pytest

from teamroom.store import ManualClock, SQLiteStore
from teamroom.tools import agents, board, handoffs, locks
from tests.plans import full_scans, traced

pytestmark = pytest.mark.anyio
SMALL = {"agents", "sqlite_sequence", "sqlite_master"}  # a row per agent, per table: scanning them is fine


async def _workload(store: SQLiteStore) -> None:
    await agents.register(store, "b", role="builder")
    first = await board.post_finding(store, "a", "x", scope="wf", tags=["t"])
    await board.post_finding(store, "a", "y", supersedes=first.id)
    await board.post_finding(store, "a", "z", scope="wf", kind="decision")
    await board.read_board(store, "b", "wf", kinds=["finding"], tags=["t"], author="a", limit=1)
    await board.read_board(store, "b", "wf")
    await board.read_board(store, "b", "wf", since=0, include_superseded=True)
    await board.read_board(store, None, "wf")
    await agents.heartbeat(store, "b")
    sent = await handoffs.handoff(store, "a", "t", "s", "n", to="@builders")
    await handoffs.resume(store, "b")
    await handoffs.handoff(store, "a", "t2", "s", "n")
    await handoffs.resume(store, "a", task="t2")
    await handoffs.resume(store, "a")
    await handoffs.resume(store, "b", handoff_id=sent.handoff_id)
    await locks.claim_lock(store, "a", ["src/auth/**", "deploy:prod"])
    await handoffs.handoff(store, "a", "t3", "s", "n", to="b", transfer_locks=True)
    await handoffs.resume(store, "b", task="t3")


async def test_no_board_or_handoff_statement_scans_a_whole_table(db_path):
    store = SQLiteStore(db_path, clock=ManualClock())
    await store.open()
    statements = await traced(store, lambda: _workload(store))
    assert any("board_entries" in s for s in statements) and any("handoffs" in s for s in statements)
    assert full_scans(db_path, statements, lambda table: table not in SMALL) == {}


async def test_the_hooks_digest_reads_deliveries_the_board_and_handoffs_through_indexes(db_path):
    """The hooks run on every prompt: their digest must cost the same on a store of a million messages."""
    from teamroom.store.rules import digest
    from teamroom.tools import messages

    store = SQLiteStore(db_path, clock=ManualClock())
    await store.open()
    await _workload(store)
    await messages.send(store, "a", "b", "x")
    await messages.poll(store, "b", limit=1, lease_seconds=60)
    await messages.send(store, "a", "b", "y")
    await board.post_finding(store, "a", "news", scope="wf")
    await handoffs.handoff(store, "a", "t4", "s", "n", to="b")

    async def look():
        for agent in ("a", "b", "nobody"):
            await store._read(digest.digest, agent, 3)

    statements = await traced(store, look)
    assert any("deliveries" in s for s in statements) and any("board_entries" in s for s in statements)
    assert full_scans(db_path, statements, lambda table: table not in SMALL) == {}

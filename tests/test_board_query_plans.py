"""No statement of the board or handoffs scans a whole table: entries and handoffs are kept for good."""

from __future__ import annotations

import pytest

from teamroom.store import ManualClock, SQLiteStore
from teamroom.tools import agents, board, handoffs, locks
from tests.plans import full_scans, traced

pytestmark = pytest.mark.anyio
SMALL = {"agents", "sqlite_sequence"}  # a row per agent, a row per table: scanning them is fine


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

"""Eight server processes on one store: a busy store is never an error (SPEC §6).

Latency percentiles are printed (pytest -s); the longer run with a one-process floor is
``python -m tests.chaos.contention --processes 8 --seconds 30``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from teamroom.store import sqlite as sqlite_store
from tests.chaos.contention import hammer
from tests.conftest import ToolFailed, in_process
from tests.storeview import integrity


@pytest.mark.processes
@pytest.mark.anyio
async def test_eight_processes_hammering_one_store_never_see_a_locked_database_or_a_timeout(tmp_path: Path) -> None:
    db = tmp_path / "teamroom.db"

    result = await hammer(db, processes=8, seconds=3)

    print(result.table())
    assert result.errors == []
    sends = len(result.latencies["send"])
    assert sends > 100, "the processes did not get to hammer"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == sends  # every answered send is stored
    conn.close()
    assert integrity(db) == ["ok"]


@pytest.mark.anyio
async def test_calls_wait_while_another_process_holds_the_write_lock_and_then_succeed(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("register", agent="a")
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # what a long transaction of another process looks like
        done: list[dict] = []

        async def send(i: int) -> None:
            done.append(await call("send", agent="a", to="a", body=f"{i}"))

        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(send, i)
            await anyio.sleep(0.5)  # the hold: every call must still be waiting, none failed
            assert done == []
            holder.execute("COMMIT")
        holder.close()
        assert len(done) == 5
        assert len((await call("poll", agent="a"))["messages"]) == 5


@pytest.mark.anyio
async def test_a_lock_held_past_the_limit_is_a_clear_error_not_a_hang(db_path: Path, clock, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_store, "BUSY_GIVE_UP_S", 0.3)
    async with in_process(db_path, clock) as call:
        await call("register", agent="a")
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(ToolFailed) as refused:
                await call("send", agent="a", to="a", body="x")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert (await call("send", agent="a", to="a", body="x"))["recipients"] == ["a"]
    assert refused.value.text.startswith("unavailable: ") and "fuser" in refused.value.text, refused.value.text

"""Eight server processes on one store: a busy store is never an error (SPEC §6).

Latency percentiles are printed (pytest -s); the longer run with a one-process floor is
``python -m tests.chaos.contention --processes 8 --seconds 30``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

import teamroom.store.sqlite.store as sqlite_store
from teamroom.errors import StoreUnavailable
from teamroom.store import SQLiteStore
from tests.chaos.contention import hammer
from tests.conftest import ToolFailed, in_process
from tests.storeview import integrity


@pytest.mark.processes
@pytest.mark.anyio
async def test_eight_processes_hammering_one_store_never_see_a_locked_database_or_a_timeout(tmp_path: Path) -> None:
    db = tmp_path / "teamroom.db"

    result = await hammer(db, processes=8, seconds=3)

    print(result.table())  # shown with pytest -s: calls per second and latencies (not asserted)
    assert result.errors == []
    sends = len(result.latencies["send"])
    # Each process makes at least one turn of the workload, however loaded the machine: how many is printed.
    assert sends >= 8 and all(result.latencies[tool] for tool in ("poll", "claim_lock")), "every process hammered"
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


@pytest.mark.anyio
async def test_a_server_opening_while_another_process_holds_the_write_lock_waits_and_then_opens(
    tmp_path: Path, monkeypatch
) -> None:
    """Eight servers started at once on a fresh store: one failed with 'database is locked' under load."""
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 50)  # SQLite's own wait gives up at once: the open must retry
    db = tmp_path / "teamroom.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the fresh file cannot be put in WAL mode nor migrated meanwhile
    opened: list[SQLiteStore] = []

    async def open_store() -> None:
        store = SQLiteStore(db)
        await store.open()
        opened.append(store)

    async with anyio.create_task_group() as tg:
        tg.start_soon(open_store)
        await anyio.sleep(0.5)  # the hold
        assert opened == []
        holder.execute("COMMIT")
    holder.close()
    await opened[0].register("a", None, None, None)
    await opened[0].close()
    assert integrity(db) == ["ok"]


@pytest.mark.anyio
async def test_a_server_that_cannot_open_a_busy_store_in_time_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(sqlite_store, "BUSY_GIVE_UP_S", 0.3)
    db = tmp_path / "teamroom.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable) as refused:
            await SQLiteStore(db).open()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "database is locked" in str(refused.value) and "fuser" in str(refused.value), refused.value

"""A store that is not the store any more refuses to write, in one line that says what to do (issue 11
point 8): the file deleted or replaced while a server runs, a second hard link, the WAL deleted."""

from __future__ import annotations

import os
import sqlite3

import pytest

from teamroom.errors import StoreUnavailable
from teamroom.store import SQLiteStore

pytestmark = pytest.mark.anyio


async def send(store: SQLiteStore, body: str):
    return await store.send(
        "lead", ["w"], body, subject=None, kind="task", payload=None, priority=1, thread_id=None,
        reply_to=None, ttl_seconds=None, max_attempts=5, idempotency_key=None,
    )  # fmt: skip


async def team(store: SQLiteStore) -> None:
    await store.register("lead", None, None, None)
    await store.register("w", None, None, None)


def bodies(db) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT body FROM messages ORDER BY id")]
    finally:
        conn.close()


async def refused(store: SQLiteStore, *words: str) -> None:
    with pytest.raises(StoreUnavailable) as refusal:
        await send(store, "after")
    text = str(refusal.value)
    assert all(word in text for word in words), text
    assert "\n" not in text


async def test_a_store_deleted_while_a_server_runs_takes_no_more_writes(db_path, clock):
    async with SQLiteStore(db_path, clock=clock) as store:
        await team(store)
        await send(store, "before")
        for name in (db_path, f"{db_path}-wal", f"{db_path}-shm"):
            os.unlink(name)
        await refused(store, "was deleted", "Restart")
    async with SQLiteStore(db_path, clock=clock) as fresh:  # a new server opens the store now at that path
        await team(fresh)
        await send(fresh, "fresh")
    assert bodies(db_path) == ["fresh"]


async def test_a_store_replaced_while_a_server_runs_takes_no_more_writes(db_path, tmp_path, clock):
    other = tmp_path / "other.db"
    async with SQLiteStore(other, clock=clock) as store:
        await team(store)
    async with SQLiteStore(db_path, clock=clock) as store:
        await team(store)
        await send(store, "before")
        os.replace(other, db_path)
        await refused(store, "was replaced", "Restart")
    assert "after" not in bodies(db_path)


async def test_a_second_hard_link_is_refused_while_running_and_at_open(db_path, tmp_path, clock):
    twin = tmp_path / "twin.db"
    async with SQLiteStore(db_path, clock=clock) as store:
        await team(store)
        await send(store, "before")
        os.link(db_path, twin)
        await refused(store, "2 hard links", "find / -samefile")
    with pytest.raises(StoreUnavailable, match="hard links"):
        async with SQLiteStore(twin, clock=clock):
            pass
    os.unlink(twin)
    assert bodies(db_path) == ["before"]


async def test_a_deleted_wal_stops_the_running_server_and_is_explained_to_a_new_one(db_path, clock):
    async with SQLiteStore(db_path, clock=clock) as store:
        await team(store)
        await send(store, "before")
        os.unlink(f"{db_path}-wal")
        await refused(store, "write-ahead log", "deleted or replaced")
        with pytest.raises(StoreUnavailable) as refusal:
            async with SQLiteStore(db_path, clock=clock):
                pass
        assert "disk I/O error" in str(refusal.value) and "stop every teamroom process" in str(refusal.value)

"""What store/sqlite/aio.py relies on in aiosqlite's internals, checked against the installed release.

When one of these fails after an aiosqlite upgrade, the store cannot run its transactions: read the
module's docstring, then adapt `aio` to the new release or pin aiosqlite below it in pyproject.toml.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import aiosqlite
import anyio
import pytest

from teamroom.errors import StoreUnavailable
from teamroom.store.sqlite import aio

CHANGED = f"aiosqlite {aiosqlite.__version__} changed what teamroom.store.sqlite.aio relies on: "


def test_aiosqlite_still_has_the_private_names_the_adapter_uses() -> None:
    assert callable(getattr(aiosqlite.Connection, "_execute", None)), CHANGED + "Connection._execute is gone"
    assert isinstance(getattr(aiosqlite.Connection, "_conn", None), property), CHANGED + "Connection._conn is gone"


@pytest.mark.anyio
async def test_a_function_runs_on_aiosqlites_thread_with_its_sqlite3_connection(tmp_path: Path) -> None:
    loop_thread = threading.get_ident()
    db = await aio.connect(lambda: sqlite3.connect(tmp_path / "x.db"))
    try:
        seen = [await aio.run(db, lambda conn, n: (threading.get_ident(), conn, n), i) for i in range(3)]
        threads, conns, numbers = zip(*seen, strict=True)
        assert numbers == (0, 1, 2), CHANGED + "the arguments did not reach the function"
        assert loop_thread not in threads, CHANGED + "the function ran on the event loop's thread"
        assert len(set(threads)) == 1, CHANGED + "the functions ran on more than one thread"
        assert all(isinstance(c, sqlite3.Connection) for c in conns), CHANGED + f"got {conns[0]!r}, no connection"
        await aio.run(db, lambda conn: conn.execute("CREATE TEMP TABLE mine (x)"))  # visible to its connection only
        assert await db.execute_fetchall("SELECT COUNT(*) FROM temp.mine") == [(0,)], (
            CHANGED + "the function got another connection than aiosqlite's own"
        )
        with pytest.raises(ZeroDivisionError):
            await aio.run(db, lambda conn: 1 / 0)
    finally:
        await db.close()


@pytest.mark.anyio
async def test_functions_run_one_at_a_time_in_order_and_settle_waits_for_those_queued_before(tmp_path: Path) -> None:
    db = await aio.connect(lambda: sqlite3.connect(tmp_path / "x.db"))
    release, order = threading.Event(), []

    async def queue(name: str, wait: bool) -> None:
        await aio.run(db, lambda conn: (release.wait(10) if wait else None, order.append(name)))

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue, "first", True)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(queue, "second", False)
            await anyio.wait_all_tasks_blocked()
            assert order == [], CHANGED + "a function ran while another was still running"
            release.set()
            await aio.settle(db)
            assert order == ["first", "second"], CHANGED + f"settle returned with {order} done, or out of order"
    finally:
        await db.close()
    await aio.settle(db)  # closed: nothing is left to wait for, and it must say so rather than fail


@pytest.mark.anyio
async def test_a_function_whose_caller_was_cancelled_still_runs_and_settle_waits_for_it(tmp_path: Path) -> None:
    """The store's rollback of an abandoned transaction depends on this: the thread, not the loop, decides."""
    db = await aio.connect(lambda: sqlite3.connect(tmp_path / "x.db"))
    started, release, ran = threading.Event(), threading.Event(), []

    def work(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)
        ran.append(True)

    try:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(aio.run, db, work)
                await anyio.to_thread.run_sync(started.wait, 10)
                scope.cancel()
        assert ran == [], "the cancelled caller waited for its function"
        release.set()
        await aio.settle(db)
        assert ran == [True], CHANGED + "a function whose caller was cancelled did not run to its end"
    finally:
        await db.close()


@pytest.mark.anyio
async def test_a_failing_connector_is_raised_once_the_thread_has_stopped(tmp_path: Path) -> None:
    before = set(threading.enumerate())

    def refuse() -> sqlite3.Connection:
        raise StoreUnavailable("no store here")

    with pytest.raises(StoreUnavailable, match="no store here"):
        await aio.connect(refuse)
    for thread in set(threading.enumerate()) - before:
        thread.join(5)
        assert not thread.is_alive(), CHANGED + "the connection's thread outlived a failed open"

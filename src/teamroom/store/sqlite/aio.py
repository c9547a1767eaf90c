"""The one place teamroom reaches into aiosqlite: run a plain function on its connection's thread.

A teamroom transaction is a synchronous function of an open ``sqlite3.Connection`` (the rules read
and write through it, several statements, all or nothing). aiosqlite gives one statement per await
(``await db.execute(...)``): a transaction of ten statements would cross threads twenty times, and
the loop would run between them. aiosqlite has no public "run this callable on your thread" verb;
its private ``Connection._execute(fn, *args)`` is exactly that (every public method is built on
it), and ``Connection._conn`` is the ``sqlite3.Connection`` it owns. Both have kept their shape
from 0.17 to 0.22; tests/test_aio_adapter.py fails with a clear message if a release changes them.

aiosqlite runs what it is given one at a time, in the order given, on one thread: `settle` relies
on that to wait for everything queued before it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")


async def connect(connector: Callable[[], sqlite3.Connection]) -> aiosqlite.Connection:
    """Start an aiosqlite connection whose ``sqlite3`` connection ``connector`` makes, on its thread.

    What ``connector`` raises is raised here once the thread has stopped. (Left to aiosqlite, the
    thread stops a moment after the error reaches the caller; a server that exits at once on that
    error then gets a traceback from the thread about its closed event loop.)
    """
    failed: list[BaseException] = []

    def guarded() -> sqlite3.Connection:
        try:
            return connector()
        except BaseException as exc:
            failed.append(exc)
            return sqlite3.connect(":memory:")  # a stand-in, so that close() stops the thread and waits

    db = await aiosqlite.Connection(guarded, iter_chunk_size=64)  # what aiosqlite.connect() builds
    if failed:
        await db.close()
        raise failed[0]
    return db


async def run(db: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """``fn(conn, *args)`` on ``db``'s thread, with ``conn`` its ``sqlite3.Connection``; in one hop."""
    return await db._execute(_call, db, fn, args)


async def settle(db: aiosqlite.Connection) -> None:
    """Return once everything queued on ``db`` before this call has finished."""
    # ValueError is "Connection closed": aiosqlite closes only after what was queued before has run.
    with contextlib.suppress(ValueError):
        await db._execute(_nothing)


def _call(db: aiosqlite.Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    return fn(db._conn, *args)


def _nothing() -> None:
    return None

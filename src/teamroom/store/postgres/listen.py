"""Waking a process's waiters when another process commits: one LISTEN connection per store.

Every write transaction of every server sends ``NOTIFY`` on the store's channel (PostgreSQL
delivers it at commit, and drops it on rollback), with the writer's id as payload. A `Listener`
thread holds one connection that LISTENs, and calls ``on_change`` for every notification from
another writer; the store fans that out to all its waiters. The database stays the source of
truth: a waiter rechecks the data after every wake. Notifications sent while the listening
connection is away are lost, so while it is away ``on_change`` fires every `RETRY_S` (a slow
poll: waiters recheck by themselves) and once more when it is back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

CHECK_S = 5.0  # an idle listening connection is checked this often (a dead peer sends nothing)
RETRY_S = 1.0  # while it is away: reconnect, and wake the waiters, this often


class Listener:
    """A thread that turns notifications on ``channel`` into calls of ``on_change``."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        connect: Callable[[], psycopg.Connection[Any]],
        channel: str,
        own_id: str,
        on_change: Callable[[], None],
    ) -> None:
        self._conn: psycopg.Connection[Any] | None = conn  # already LISTENing: nothing is missed from open on
        self._connect = connect
        self._channel = channel
        self._own_id = own_id
        self._on_change = on_change
        self._stop_r, self._stop_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name=f"teamroom-listen-{channel}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the thread and close its connection (blocks until it has)."""
        self._stopping = True
        os.write(self._stop_w, b"x")
        self._thread.join()
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)

    def _main(self) -> None:
        try:
            while not self._stopping:
                if self._conn is None:
                    self._reconnect()
                else:
                    self._listen()
        finally:
            if self._conn is not None:
                self._conn.close()

    def _listen(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            ready, _, _ = select.select([conn.fileno(), self._stop_r], [], [], CHECK_S)
            if self._stop_r in ready:
                return
            if not ready:
                conn.execute("SELECT 1")  # a quiet connection may be a dead one; notices arriving meanwhile queue
            news = [n for n in conn.notifies(timeout=0) if n.payload != self._own_id]
        except (psycopg.OperationalError, OSError) as exc:
            log.warning("store notifications lost (%s); reconnecting every %.0f s", _line(exc), RETRY_S)
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()
            self._conn = None
            self._on_change()  # what was sent meanwhile is lost: every waiter rechecks
            return
        if news:
            self._on_change()

    def _reconnect(self) -> None:
        ready, _, _ = select.select([self._stop_r], [], [], RETRY_S)
        if ready:
            return
        try:
            conn = self._connect()
            conn.execute(f"LISTEN {self._channel}")
        except Exception as exc:  # a refused connection, a bad password, a StoreUnavailable: still away
            log.debug("store notifications: still away (%s)", _line(exc))
            self._on_change()  # the slow poll: waiters recheck the data themselves
            return
        log.info("store notifications: listening again")
        self._conn = conn
        self._on_change()  # anything may have been committed while away


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())

"""Waking waiters when a store changes: one LISTEN connection per process and store.

Every write transaction sends ``NOTIFY`` on the store's channel (PostgreSQL delivers it at commit
and drops it on rollback), its payload the `Listener.token` of the writer's process. One
`Listener` per store and process (shared by every `PostgresStore` of this process on the same URL)
counts the changes the process has seen in `Listener.seq`: its own commits at once
(`committed_here`), and other processes' when their notifications arrive (its own come back too,
and are skipped: they were counted already). Each change is fanned out to the subscribed stores,
which wake their waiters. A change token is that count: a commit of this process is in every token
taken after it returned. Another process's commit is not always: PostgreSQL sends a notification
at commit, but not in step with the commit's answer, so a waiter may wake once for a commit made
just before its token (it rechecks and finds nothing new).

The database stays the source of truth: a waiter rechecks the data after every wake.
Notifications sent while the connection is away are lost, so while it is away a change is counted
every `RETRY_S` (a slow poll: waiters recheck by themselves), and once more when it is back. A dead
peer is noticed by TCP keepalives (the store's connections ask for them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import threading
from collections.abc import Callable, Hashable
from typing import Any, ClassVar

import psycopg

log = logging.getLogger(__name__)

RETRY_S = 1.0  # while the connection is away: reconnect, and count a change, this often
PROCESS = secrets.token_hex(6)  # this process, in the payload of its NOTIFYs


class Listener:
    """A thread that LISTENs on ``channel`` and counts the changes this process sees."""

    _shared: ClassVar[dict[Hashable, Listener]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, key: Hashable, connect: Callable[[], psycopg.Connection[Any]], channel: str) -> None:
        self.key = key
        self.token = f"{PROCESS}.{len(self._shared)}.{secrets.token_hex(2)}"
        self.seq = 0
        self._connect = connect
        self._channel = channel
        self._users = 0
        self._subscribers: list[Callable[[], None]] = []
        self._counting = threading.Lock()
        self._reading = threading.Lock()  # libpq's connection is read by one thread at a time
        self._conn: psycopg.Connection[Any] | None = None
        self._stop_r, self._stop_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name=f"teamroom-listen-{channel}", daemon=True)

    # --- sharing -----------------------------------------------------------------------------

    @classmethod
    def acquire(cls, key: Hashable, connect: Callable[[], psycopg.Connection[Any]], channel: str) -> Listener:
        """This process's listener of the store ``key`` names, started (and LISTENing) if it was not.
        Blocks while connecting: call it on a worker thread."""
        with cls._shared_lock:
            listener = cls._shared.get(key)
            if listener is None:
                listener = cls(key, connect, channel)
                conn = connect()
                try:
                    conn.execute(f"LISTEN {channel}")
                except BaseException:
                    conn.close()
                    raise
                listener._conn = conn  # listening before any store uses it: no commit from now on is missed
                listener._thread.start()
                cls._shared[key] = listener
            listener._users += 1
            return listener

    def release(self) -> None:
        """One user fewer; the last one stops the thread and closes the connection (blocks until then)."""
        with self._shared_lock:
            self._users -= 1
            if self._users:
                return
            del self._shared[self.key]
        self._stopping = True
        os.write(self._stop_w, b"x")
        self._thread.join()
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)

    def subscribe(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from any thread) after every change counted."""
        with self._counting:
            self._subscribers.append(wake)

    def unsubscribe(self, wake: Callable[[], None]) -> None:
        with self._counting:
            self._subscribers.remove(wake)

    # --- counting ------------------------------------------------------------------------------

    def committed_here(self) -> None:
        """A store of this process committed a write (its NOTIFY, when it comes back, is skipped)."""
        self._count()

    def news(self) -> None:
        """Count what has already arrived from other processes, without waiting (when the thread is
        reading, it counts it itself)."""
        if not self._reading.acquire(blocking=False):
            return
        try:
            news = self._drain()
        except psycopg.Error:
            return  # the thread sees the broken connection too, and deals with it
        finally:
            self._reading.release()
        if news:
            self._count()

    def _count(self) -> None:
        with self._counting:
            self.seq += 1
            subscribers = list(self._subscribers)
        for wake in subscribers:
            wake()

    def _drain(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        pgconn = conn.pgconn
        pgconn.consume_input()  # what the socket holds, without waiting; raises if the connection broke
        news = False
        own = self.token.encode()
        while (note := pgconn.notifies()) is not None:
            news = news or note.extra != own
        return news

    # --- the thread ----------------------------------------------------------------------------

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
            ready, _, _ = select.select([conn.fileno(), self._stop_r], [], [])
            if self._stop_r in ready:
                return
            with self._reading:
                news = self._drain()
        except (psycopg.Error, OSError) as exc:
            log.warning("store notifications lost (%s); reconnecting every %.0f s", _line(exc), RETRY_S)
            with self._reading, contextlib.suppress(psycopg.Error, OSError):
                self._conn = None
                conn.close()
            self._count()  # what was sent meanwhile is lost: every waiter rechecks
            return
        if news:
            self._count()

    def _reconnect(self) -> None:
        ready, _, _ = select.select([self._stop_r], [], [], RETRY_S)
        if ready:
            return
        try:
            conn = self._connect()
            conn.execute(f"LISTEN {self._channel}")
        except Exception as exc:  # a refused connection, a bad password, a StoreUnavailable: still away
            log.debug("store notifications: still away (%s)", _line(exc))
            self._count()  # the slow poll: waiters recheck the data themselves
            return
        log.info("store notifications: listening again")
        with self._reading:
            self._conn = conn
        self._count()  # anything may have been committed while away


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())

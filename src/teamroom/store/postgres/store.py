"""The PostgreSQL backend of `Store`: one database shared by teamroom servers on many machines.

Each verb is one transaction run in one hop on a worker thread, on one psycopg connection per
store (the rules are synchronous; psycopg was measured against asyncpg for this, see
bench/bench_pg_driver.py). A write's first statement takes the store's write lock, a
transaction-level advisory lock held until commit, so the reads and writes of two verbs never
interleave, on this server or any other: the all-or-nothing claims, board ``seq``, handoff resume
and the events' commit order all rest on it. That same first statement reads the database's
clock (``clock_timestamp()``, after the lock) and queues the ``NOTIFY`` that wakes other servers'
waiters at commit: a write costs two round trips besides its own statements (that one and the
COMMIT). Reads run in one REPEATABLE READ, READ ONLY snapshot and take no lock. A caller cancelled
before COMMIT leaves nothing, one cancelled after it gets what it took given back (`Store._give_back`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from teamroom.errors import Conflict, Invalid, StoreUnavailable
from teamroom.schemas.ops import GcResult, StoreSize
from teamroom.store import archive
from teamroom.store.base import Clock, Store
from teamroom.store.postgres.listen import Listener
from teamroom.store.postgres.tx import Connection, PgTx, postgres_queries, row_factory

log = logging.getLogger(__name__)
T = TypeVar("T")

# teamroom's advisory locks are (LOCK_CLASS + n, the hash of the store's schema): two stores in two
# schemas of one database do not serialise each other.
LOCK_CLASS = 0x7EA3_0000
WRITE_LOCK = LOCK_CLASS
MIGRATE_LOCK = LOCK_CLASS + 1
GC_LOCK = LOCK_CLASS + 2  # held (session-level, on a connection of its own) by the one gc running on a store
# A write waits for the write lock LOCK_SLICE at a time (so that a cancelled call stops waiting) and
# gives up after LOCK_GIVE_UP_S: something holds it far longer than any verb takes. Any other lock is
# waited for LOCK_TIMEOUT at most. A session idle inside a transaction this long has lost its client.
LOCK_SLICE = "100ms"
LOCK_GIVE_UP_S = 30.0
LOCK_TIMEOUT = "30s"
SESSION_SETTINGS = f"SET lock_timeout = '{LOCK_TIMEOUT}'; SET idle_in_transaction_session_timeout = '60s'"
# What a teamroom connection asks for unless the URL says otherwise: give up on an unreachable host,
# notice a peer that vanished (keepalives), and say who we are in pg_stat_activity.
CONNECT_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}
NOW_MS = "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


def migrations() -> list[tuple[int, str]]:
    """The numbered SQL files of store/postgres/migrations, in order."""
    found = []
    for entry in resources.files("teamroom.store.postgres").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append((int(entry.name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def display(url: str) -> str:
    """``url`` fit to print: a password in it is replaced by ``***``."""
    url = re.sub(r"^(\w+://[^:/@?]*):[^@/?]*@", r"\1:***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


def _line(exc: BaseException) -> str:
    """psycopg's message on one line (libpq's span several)."""
    return " ".join(str(exc).split())


def _unavailable(where: str, exc: psycopg.Error) -> StoreUnavailable:
    text = _line(exc)
    if "Connection refused" in text or "No such file or directory" in text:
        hint = "check the host and port of the URL, and that PostgreSQL runs there"
    elif "could not translate host name" in text or "Name or service not known" in text:
        hint = "check the host name in the URL"
    elif "password" in text or "authentication failed" in text:
        hint = "check the user and the password (PGPASSWORD, ~/.pgpass or the URL)"
    elif "does not exist" in text and "database" in text:
        hint = "create the database (createdb NAME) or name another one in the URL"
    elif "timeout expired" in text:
        hint = "the server did not answer in time; check the host and the network"
    elif "lock timeout" in text:
        hint = "another server has held the store's write lock too long; find it in pg_stat_activity"
    elif "permission denied" in text:
        hint = "the user may not create or use the store's tables; grant it, or use the store's owner"
    else:
        hint = "check the URL and the database server"
    return StoreUnavailable(f"store {where}: {text}: {hint}")


def connect(url: str, application: str = "teamroom") -> psycopg.Connection[Any]:
    """A new connection to ``url`` (autocommit: transactions are begun by hand); ``application``
    names it in pg_stat_activity unless the URL does."""
    try:
        params = {**CONNECT_DEFAULTS, "application_name": application, **conninfo_to_dict(url)}
    except psycopg.ProgrammingError as exc:
        raise StoreUnavailable(
            f"store {display(url)}: not a PostgreSQL URL ({_line(exc)}): write postgresql://USER@HOST:PORT/DATABASE"
        ) from None
    try:
        raw = psycopg.connect(make_conninfo(**params), autocommit=True, row_factory=row_factory)
        raw.execute(SESSION_SETTINGS)
    except psycopg.Error as exc:
        raise _unavailable(display(url), exc) from None
    return raw


def _rollback(raw: psycopg.Connection[Any]) -> None:
    if raw.broken or raw.closed:
        return  # the server rolls back a transaction whose connection is gone
    with contextlib.suppress(psycopg.OperationalError):  # it broke just now: the same
        raw.execute("ROLLBACK")


class _Call:
    """One transaction handed to the worker thread, and what the loop and the thread tell each other of it."""

    __slots__ = ("_lock", "abandoned", "args", "begun", "committed", "done", "fn", "result", "write")

    def __init__(self, write: bool, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.write, self.fn, self.args = write, fn, args
        self.abandoned = False  # set by the loop when the caller is cancelled; read by the thread before COMMIT
        self.begun = False  # set by the thread when it takes the call up
        self.committed = False  # set by the thread once COMMIT returned
        self.result: Any = None  # what the transaction answered, once committed
        self.done = threading.Event()  # set by the thread once it is done with the call
        self._lock = threading.Lock()

    def begin(self) -> bool:
        """On the thread: take the call up, unless it was abandoned while queued."""
        with self._lock:
            self.begun = not self.abandoned
            return self.begun

    def abandon(self) -> bool:
        """On the loop: the caller is gone. Whether the thread had taken the call up (then wait for `done`)."""
        with self._lock:
            self.abandoned = True
            return self.begun


class _Abandoned(Exception):
    """The caller stopped waiting before the transaction committed; it was rolled back (or never begun)."""


class _Busy(Exception):
    """Another transaction held the write lock for a whole slice; rolled back, to be tried again."""

    def __init__(self, exc: psycopg.Error) -> None:
        super().__init__(_line(exc))
        self.exc = exc


class _Lost(Exception):
    """The connection broke; ``committing``: while COMMIT was on its way (its outcome is unknown)."""

    def __init__(self, exc: psycopg.Error, committing: bool) -> None:
        super().__init__(_line(exc))
        self.exc, self.committing = exc, committing


class DatabaseClock:
    """The database's clock as the last transaction read it, carried forward by this machine's
    monotonic clock between transactions (for `Store.next_ready_in`, which asks outside one)."""

    def __init__(self) -> None:
        self._offset_ms = 0

    def set(self, db_ms: int) -> None:
        self._offset_ms = db_ms - time.monotonic_ns() // 1_000_000

    def now_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000 + self._offset_ms


class PostgresStore(Store):
    """The Store on a PostgreSQL database (``postgresql://USER@HOST:PORT/DB``); open() once per process.

    Time is the database's (read once per transaction) unless a ``clock`` is given (tests pass a
    `ManualClock`). ``durability="full"`` insists on ``synchronous_commit = on``; otherwise the
    database's own setting decides, as its operators chose it.
    """

    def __init__(self, url: str, *, durability: str = "normal", clock: Clock | None = None) -> None:
        self._db_clock = clock is None
        super().__init__(clock or DatabaseClock())
        self.url = url
        self.where = display(url)
        self.durability = durability
        self._queries = postgres_queries()
        self._conn: Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._begin: dict[bool, str] = {}
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: anyio.Event | None = None
        self._key: int | None = None  # the hash of the store's schema, once open
        self._name: str | None = None  # DATABASE.SCHEMA, once open
        self._archive = os.environ.get("TEAMROOM_ARCHIVE_DIR") or None
        self._cwd = Path.cwd()

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = anyio.Event()
        await anyio.to_thread.run_sync(self._open_sync, limiter=self._limiter)
        assert self._listener is not None
        self._listener.subscribe(self._changed)

    def _open_sync(self) -> None:
        """Connect, migrate, and listen (before open returns: no commit after it is missed)."""
        raw = connect(self.url)
        try:
            schema, key, database, now = raw.execute(
                f"SELECT current_schema(), hashtext(current_schema()), current_database(), {NOW_MS}"
            ).fetchone()
            if self._db_clock:
                self.clock.set(now)  # type: ignore[attr-defined]
            if schema is None:
                raise StoreUnavailable(
                    f"store {self.where}: its search_path names no schema that exists; create the schema"
                    " or fix options=-csearch_path in the URL"
                )
            self._key, self._name = key, f"{database}.{schema}"
            self._migrate(raw, key)
            if self.durability == "full":
                raw.execute("SET synchronous_commit = on")
            channel = f"teamroom_{key & 0xFFFF_FFFF:08x}"
            url = self.url
            self._listener = Listener.acquire(
                (url, channel), lambda: connect(url, "teamroom listen"), channel
            )  # one per process and store: shared with the other stores of this process on this URL
        except BaseException:
            raw.close()
            raise
        self._conn = Connection(raw)
        self._prepare(key, channel, self._listener.token)

    def _prepare(self, key: int, channel: str, token: str) -> None:
        """The statements that open a transaction, for this store's schema (``key``: its hash)."""
        notify = f"pg_notify('{channel}', '{token}')"
        clock = f", {NOW_MS}" if self._db_clock else ""
        self._begin = {
            True: f"BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '{LOCK_SLICE}';"
            f" WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock({WRITE_LOCK}, {key}))"
            f" SELECT {notify}{clock} FROM locked; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'",
            False: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" + (f"; SELECT {NOW_MS}" if clock else ""),
        }

    def _migrate(self, raw: psycopg.Connection[Any], key: int) -> None:
        """Apply the migrations this store lacks, all in one transaction under the migration lock:
        servers that start together wait for the first, then find nothing left to do."""
        known = migrations()
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s, %s)", (MIGRATE_LOCK, key))
            version = self._version(raw)
            self._refuse_newer(version, known[-1][0])  # before anything is written
            if version is None:
                raw.execute("CREATE TABLE teamroom_schema (version integer NOT NULL)")
                raw.execute("INSERT INTO teamroom_schema (version) VALUES (0)")
                version = 0
            for number, script in known:
                if number > version:
                    raw.execute(script, prepare=False)
                    raw.execute("UPDATE teamroom_schema SET version = %s", (number,))
                    log.info("store %s: applied migration %04d", self.where, number)

    @staticmethod
    def _version(raw: psycopg.Connection[Any]) -> int | None:
        if raw.execute("SELECT to_regclass('teamroom_schema')").fetchone()[0] is None:
            return None
        return raw.execute("SELECT version FROM teamroom_schema").fetchone()[0]

    def _refuse_newer(self, version: int | None, latest: int) -> None:
        if version is not None and version > latest:
            raise StoreUnavailable(
                f"store {self.where} has schema version {version}, newer than this teamroom knows ({latest}); "
                "upgrade teamroom (pip install -U teamroom) or pass --db another path"
            )

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.unsubscribe(self._changed)
            await anyio.to_thread.run_sync(listener.release)
        await anyio.to_thread.run_sync(self._close_sync, limiter=self._limiter)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.raw.close()
        self._conn = None

    # --- transactions ------------------------------------------------------------------------

    async def _run(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """Run one transaction on a worker thread; a caller cancelled before COMMIT leaves nothing.

        Cancelled while its transaction is queued, waits for the write lock or runs, the call marks
        it abandoned: the thread rolls it back instead of committing (or never begins it). The call
        then waits, shielded, for the thread to be done with it, so nothing of it is still running
        when the cancellation goes on.
        """
        if self._listener is None:
            raise StoreUnavailable("the store is not open")
        call = _Call(write, fn, args)
        try:
            return await anyio.to_thread.run_sync(
                self._transaction, call, limiter=self._limiter, abandon_on_cancel=True
            )
        except anyio.get_cancelled_exc_class():
            if call.abandon():  # its thread had begun: wait until it is done with the transaction
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(call.done.wait)
                    if call.committed:  # too late to undo: its answer reaches nobody, so what it took comes back
                        if call.write:
                            self._local_commit()
                        await self._give_back(fn, call.result)
            raise

    def _transaction(self, call: _Call) -> Any:
        if not call.begin():
            return None  # abandoned while queued: nothing was done
        try:
            return self._wait_for_lock(call)
        except _Abandoned:
            return None  # nobody awaits the answer any more
        finally:
            call.done.set()

    def _wait_for_lock(self, call: _Call) -> Any:
        """Attempt the transaction until it has the write lock; each attempt waits for it one slice
        (LOCK_SLICE) at most, so that an abandoned call stops waiting within one."""
        started = time.monotonic()
        while True:
            try:
                return self._reconnecting(call)
            except _Busy as busy:
                if time.monotonic() - started > LOCK_GIVE_UP_S:
                    raise _unavailable(self.where, busy.exc) from None

    def _reconnecting(self, call: _Call) -> Any:
        """One attempt; a connection found broken before COMMIT was sent is reopened and the
        transaction run again once (nothing of it was applied)."""
        if self._conn is None:  # lost, and not back at the last call
            self._reconnect()
        try:
            return self._attempt(self._conn, call)
        except _Lost as lost:
            if lost.committing:
                raise StoreUnavailable(
                    f"store {self.where}: lost the database while committing ({lost}); the call may or may"
                    " not have taken effect: look before repeating it"
                ) from None
            log.warning("store %s: lost the database (%s); reconnecting", self.where, lost)
        self._reconnect()
        try:
            return self._attempt(self._conn, call)
        except _Lost as lost:
            raise _unavailable(self.where, lost.exc) from None

    def _reconnect(self) -> None:
        old, self._conn = self._conn, None
        if old is not None:
            old.raw.close()
        try:
            raw = connect(self.url)
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"lost the database and cannot reconnect: {exc.detail}") from None
        if self.durability == "full":
            raw.execute("SET synchronous_commit = on")
        self._conn = Connection(raw)

    def _attempt(self, conn: Connection, call: _Call) -> Any:
        """One transaction, all or nothing; `_Busy` when the write lock was not had within a slice."""
        if call.abandoned:
            raise _Abandoned()
        raw = conn.raw
        try:
            cursor = raw.execute(self._begin[call.write], prepare=False)
            if self._db_clock:
                while cursor.description is None and cursor.nextset():  # to the SELECT's result
                    pass
                now = cursor.fetchone()[-1]
                self.clock.set(now)  # type: ignore[attr-defined]
            else:
                now = self.clock.now_ms()
            tx = PgTx(conn, now, self._seen, self._queries)
            result = self._apply(tx, call.write, call.fn, call.args)
            if call.abandoned:  # the last moment the caller's cancellation can still undo it
                raise _Abandoned()
        except BaseException as exc:
            _rollback(raw)
            if isinstance(exc, psycopg.errors.LockNotAvailable):
                raise _Busy(exc) from None
            if isinstance(exc, psycopg.OperationalError):
                if raw.broken or raw.closed:
                    raise _Lost(exc, committing=False) from None
                raise _unavailable(self.where, exc) from None
            raise
        try:
            raw.execute("COMMIT")
        except psycopg.OperationalError as exc:
            if raw.broken or raw.closed:
                raise _Lost(exc, committing=True) from None
            raise _unavailable(self.where, exc) from None
        call.result, call.committed = result, True
        self._committed(tx)
        return result

    # --- change notification -----------------------------------------------------------------

    def _local_commit(self) -> None:
        assert self._listener is not None, "store is not open"
        self._listener.committed_here()  # in every token from now on, this store's and the process's others'

    def _changed(self) -> None:
        """The listener counted a change (called on any thread): wake this store's waiters."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()
        self._event = anyio.Event()

    def change_token(self) -> int:
        assert self._listener is not None, "store is not open"
        self._listener.news()  # notifications already here, not yet counted by the listener's thread
        return self._listener.seq

    async def wait_for_change(self, token: Any, timeout: float) -> bool:
        with anyio.move_on_after(max(timeout, 0)):
            while self.change_token() == token:
                assert self._event is not None, "store is not open"
                await self._event.wait()
        return self.change_token() != token

    # --- operations: what a PostgreSQL store does its own way -----------------------------------

    def archive_dir(self) -> Path:
        """Where gc appends the events it trims: TEAMROOM_ARCHIVE_DIR if set, else
        ``DATABASE.SCHEMA.archive/`` in the working directory this store was made in (see README)."""
        if self._archive is not None:
            return Path(self._archive)
        return self._cwd / f"{self._name or 'teamroom'}.archive"

    async def gc(self, retention_days: float, *, by: str, **options: Any) -> GcResult:
        """`Store.gc`, one at a time per store however many servers share it: the first takes GC_LOCK
        (a session-level advisory lock, on a connection of its own, released when that closes, so a
        gc killed midway frees it); another finds it held and is refused with `Conflict`."""
        holder = await anyio.to_thread.run_sync(self._gc_lock)
        if holder is None:
            raise Conflict(
                f"another teamroom process is running gc on store {self.where}; nothing was done: try again"
                " when it has finished"
            )
        try:
            return await super().gc(retention_days, by=by, **options)
        finally:
            await anyio.to_thread.run_sync(holder.close)

    def _gc_lock(self) -> psycopg.Connection[Any] | None:
        raw = connect(self.url, "teamroom gc")
        try:
            if raw.execute("SELECT pg_try_advisory_lock(%s, %s)", (GC_LOCK, self._key)).fetchone()[0]:
                return raw
        except psycopg.Error as exc:
            raw.close()
            raise _unavailable(self.where, exc) from None
        raw.close()
        return None

    async def store_size(self) -> StoreSize:
        return await anyio.to_thread.run_sync(self._size)

    def _size(self) -> StoreSize:
        """The schema's tables with their indexes and TOAST (pg_total_relation_size), on a connection of
        its own. The free space inside them (what VACUUM made reusable) is not counted: 0."""
        raw = connect(self.url, "teamroom stats")
        try:
            [total] = raw.execute(
                "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'm')"
            ).fetchone()
        except psycopg.Error as exc:
            raise _unavailable(self.where, exc) from None
        finally:
            raw.close()
        directory = self.archive_dir()
        return StoreSize(
            path=f"{self.where} ({self._name})", bytes=total, free_bytes=0,
            archive=str(directory), archive_bytes=archive.size(directory),
        )  # fmt: skip

    async def backup(self, target: Path) -> Path:
        """Refused: a PostgreSQL store is copied with the database's own tools, which know its roles,
        versions and replicas better than teamroom can (a pg_dump found on PATH may not match the server)."""
        schema = (self._name or "teamroom.public").split(".", 1)[1]
        raise Invalid(
            f"teamroom backup copies SQLite stores only; back up this PostgreSQL store with the database's tools,"
            f" e.g. pg_dump --schema={schema} --format=custom --file={target} '{self.where}'"
            " (or the base backups and WAL archive your database already has)"
        )

"""The SQLite backend of `Store`: one WAL file shared by every teamroom process on the machine.

Each verb is one transaction run in one hop on a worker thread: ``BEGIN IMMEDIATE`` takes the
write lock first, so the reads and writes of a verb never interleave with another process's
(the classic double-claim cannot happen). Cross-process wake-ups come from ``PRAGMA data_version``,
which changes on a connection whenever another connection commits.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from teamroom.errors import Invalid, StoreUnavailable
from teamroom.schemas.ops import StoreSize
from teamroom.store import archive
from teamroom.store.base import Clock, Store
from teamroom.store.tx import Tx, sqlite_queries

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000  # while opening (migrations); afterwards the store retries busy itself
BUSY_GIVE_UP_S = 30.0
BUSY_MAX_DELAY_S = 0.010
WATCH_INTERVAL_S = 0.002



def migrations() -> list[tuple[int, str]]:
    """The numbered SQL files of store/migrations, in order."""
    found = []
    for entry in resources.files("teamroom.store.sqlite").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append((int(entry.name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(script: str) -> list[str]:
    """Split a migration into statements (triggers keep their inner semicolons)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip().strip(";").strip():
                out.append(current)
            current = ""
    if current.strip():
        out.append(current)
    return out


class _Busy(Exception):
    """Another connection holds the lock this transaction needs; it was rolled back, retry it."""


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _unavailable(path: Path, exc: sqlite3.Error) -> StoreUnavailable:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        hint = "the store file or its directory is read-only; fix the permissions or pass --db a writable path"
    elif "not a database" in text or "malformed" in text:
        hint = (
            "the file is not a healthy teamroom store; move it aside (keep it for inspection)"
            " or pass --db another path"
        )
    elif "full" in text:
        hint = "the disk is full; free some space"
    elif "unable to open" in text:
        hint = _open_hint(path)
    elif _is_busy(exc):
        hint = f"another process has held the store's lock too long; retry, or find it with: fuser {path}"
    else:
        hint = "check the file and its directory"
    return StoreUnavailable(f"store {path}: {text}: {hint}")


def _open_hint(path: Path) -> str:
    """Why SQLite could not open ``path``, as far as the file system tells."""
    if path.is_dir():
        return "that is a directory; pass --db the path of a file (it is created if missing)"
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(path.parent, os.W_OK):
        return "the store file or its directory is read-only; fix the permissions or pass --db a writable path"
    return "the store's directory does not exist or cannot be written; pass --db a path you can write"


class SQLiteStore(Store):
    """The Store on one SQLite file; open() once per process, share it among all requests."""

    def __init__(self, path: str | Path, *, durability: str = "normal", clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.path = Path(path)
        self.durability = durability
        self._queries = sqlite_queries()
        self._conn: sqlite3.Connection | None = None
        self._watch: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._local_seq = 0
        self._local_event = anyio.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._open_sync, limiter=self._limiter)
        try:
            self._watch = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise _unavailable(self.path, exc) from None

    def _open_sync(self) -> None:
        """Open and migrate; a store busy with another process's migration is waited for, like any busy store."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create {self.path.parent}: {exc.strerror}; pass --db a path you can write"
            ) from None
        self._conn = self._retry_busy(self._connect)

    def _connect(self) -> sqlite3.Connection:
        """One attempt to open, check and migrate the store; `_Busy` when another process holds it."""
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except sqlite3.Error as exc:
            raise _unavailable(self.path, exc) from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._refuse_newer(conn)  # before anything writes to it, WAL mode included
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durability == 'full' else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
            conn.execute("PRAGMA busy_timeout = 0")  # from now on `_run` handles busy without blocking the loop
        except BaseException as exc:
            conn.close()  # a store refused at open is left exactly as it was found
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise _Busy() from exc
            if isinstance(exc, sqlite3.Error):
                raise _unavailable(self.path, exc) from None
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        for number, script in migrations():
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("PRAGMA user_version").fetchone()[0] < number:  # another process may have won
                    for statement in statements(script):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {number}")
                    log.info("store %s: applied migration %04d", self.path, number)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT (disk full) has rolled back already
                    conn.execute("ROLLBACK")
                raise
        self._refuse_newer(conn)  # a newer teamroom may have migrated it meanwhile

    def _refuse_newer(self, conn: sqlite3.Connection) -> None:
        latest = migrations()[-1][0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > latest:
            raise StoreUnavailable(
                f"store {self.path} has schema version {version}, newer than this teamroom knows ({latest}); "
                "upgrade teamroom (pip install -U teamroom) or pass --db another path"
            )

    async def close(self) -> None:
        for conn in (self._watch, self._conn):
            if conn is not None:
                conn.close()
        self._conn = self._watch = None

    # --- transactions ------------------------------------------------------------------------

    def _local_commit(self) -> None:
        self._local_seq += 1
        self._local_event.set()
        self._local_event = anyio.Event()

    async def _run(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """Run one transaction: right here when the lock is free, else on the worker thread.

        An uncontended transaction takes ~100 us, less than a thread hop, so it runs on the event
        loop with no wait at all; only when SQLite reports the store busy does it move to the worker
        thread, which waits and retries there without blocking the loop.
        """
        if self._limiter.borrowed_tokens == 0:
            try:
                return self._attempt(write, fn, args)
            except _Busy:
                pass
        return await anyio.to_thread.run_sync(self._transaction, write, fn, args, limiter=self._limiter)

    def _transaction(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return self._retry_busy(lambda: self._attempt(write, fn, args))

    def _retry_busy(self, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` until it does not find the store busy, backing off, for up to BUSY_GIVE_UP_S."""
        started, delay, warned = time.monotonic(), 0.0005, 0
        while True:
            try:
                return attempt()
            except _Busy as busy:
                waited = time.monotonic() - started
                if waited > BUSY_GIVE_UP_S:
                    raise _unavailable(self.path, busy.__cause__) from None
                if int(waited) > warned:
                    warned = int(waited)
                    log.warning("store %s busy for %d s; still waiting", self.path, warned)
                time.sleep(delay)
                delay = min(delay * 2, BUSY_MAX_DELAY_S)

    def _attempt(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """One transaction, all or nothing; `_Busy` if another process holds the lock (nothing done)."""
        conn = self._conn
        if conn is None:
            raise StoreUnavailable("the store is not open")
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            tx = Tx(conn, self.clock.now_ms(), self._seen, self._queries)
            result = self._apply(tx, write, fn, args)
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_busy(exc):
                raise _Busy() from exc
            raise _unavailable(self.path, exc) from None
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _unavailable(self.path, exc) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._committed(tx)
        return result

    # --- change notification -----------------------------------------------------------------

    def change_token(self) -> tuple[int, int]:
        assert self._watch is not None, "store is not open"
        return self._watch.execute("PRAGMA data_version").fetchone()[0], self._local_seq

    async def wait_for_change(self, token: Any, timeout: float) -> bool:
        with anyio.move_on_after(max(timeout, 0)):
            while True:
                event = self._local_event
                if self.change_token() != token:
                    return True
                with anyio.move_on_after(WATCH_INTERVAL_S):
                    await event.wait()
        return self.change_token() != token

    # --- operations: what only a SQLite file has -----------------------------------------------

    def archive_dir(self) -> Path:
        """``<store>.archive/`` beside the store file."""
        return self.path.with_name(f"{self.path.name}.archive")

    async def _gc_flush(self) -> None:
        await anyio.to_thread.run_sync(self._checkpoint)

    def _checkpoint(self) -> None:
        """Copy the WAL into the store file on a connection of its own, in a worker thread (PASSIVE: it waits
        for nobody and nobody waits for it). Left to themselves, gc's deletes fill the WAL and some
        agent's commit, on the event loop, pays for the checkpoint SQLite then runs."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    async def store_size(self) -> StoreSize:
        return await anyio.to_thread.run_sync(self._size)

    def _size(self) -> StoreSize:
        files = (self.path, self.path.with_name(f"{self.path.name}-wal"))
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)  # its own: nothing waits on the store's
        try:
            free = conn.execute("SELECT freelist_count * page_size FROM pragma_freelist_count, pragma_page_size")
            free_bytes = free.fetchone()[0]
        finally:
            conn.close()
        return StoreSize(
            path=str(self.path), bytes=sum(f.stat().st_size for f in files if f.exists()), free_bytes=free_bytes,
            archive=str(self.archive_dir()), archive_bytes=archive.size(self.archive_dir()),
        )  # fmt: skip

    async def backup(self, target: Path) -> Path:
        return await anyio.to_thread.run_sync(_backup, self.path, target)

    @staticmethod
    def inspect(path: Path) -> dict[str, Any]:
        """What `teamroom doctor` reports of a store file, read-only (nothing is created, migrated or written)."""
        return _inspect(path)


def _backup(source: Path, target: Path) -> Path:
    """Copy the live store ``source`` to ``target`` (or, for a directory, a dated file in it) consistently.

    SQLite's backup API in one step reads one snapshot: writers in other processes go on meanwhile
    (WAL), and what they commit after it began is not in the copy. The copy is checked, written to
    a temporary name, synced, and only then renamed to ``target``: a crash leaves no half copy there.
    """
    if target.is_dir():
        target = target / f"{source.stem}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.db"
    if target.exists():
        same = target.resolve() == source.resolve()
        raise Invalid(f"{target} {'is the store itself' if same else 'exists'}; pass a new file or a directory")
    partial = target.with_name(f".{target.name}.teamroom-tmp")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=BUSY_GIVE_UP_S)
    try:
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            src.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file; teamroom makes it WAL again
            verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            copy.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise _unavailable(source, exc) from None
    finally:
        src.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise StoreUnavailable(f"the copy of {source} failed its check ({verdict}); run teamroom doctor on the store")
    with open(partial, "rb+") as written:
        os.fsync(written.fileno())
    os.replace(partial, target)
    return target


def _inspect(path: Path) -> dict[str, Any]:
    """``exists``, ``bytes``, ``schema_version``, ``latest_version``, ``journal_mode``, ``integrity`` (a list
    of problems, ``["ok"]`` when there are none) and ``error`` (why it could not be read)."""
    found: dict[str, Any] = {"exists": path.is_file(), "latest_version": migrations()[-1][0]}
    if not found["exists"]:
        return found
    found["bytes"] = sum(f.stat().st_size for f in (path, path.with_name(f"{path.name}-wal")) if f.exists())
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            found["schema_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
            found["journal_mode"] = conn.execute("PRAGMA journal_mode").fetchone()[0]
            found["integrity"] = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        found["error"] = str(_unavailable(path, exc))
    return found

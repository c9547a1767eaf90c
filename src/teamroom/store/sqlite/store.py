"""The SQLite backend of `Store`: one WAL file shared by every teamroom process on the machine.

Each verb is one transaction run in one hop on aiosqlite's thread (`aio`), never on the event loop:
``BEGIN IMMEDIATE`` takes the write lock first, so the reads and writes of a verb never interleave
with another process's (the classic double-claim cannot happen). A busy store is waited for on that
thread too. Cross-process wake-ups come from ``PRAGMA data_version``, which changes on a connection
whenever another connection commits; `watch.Watcher` looks at it when the store's files are
written (inotify), and wakes every waiter of the process.
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

import aiosqlite
import anyio

from teamroom.errors import Invalid, StoreUnavailable
from teamroom.schemas.ops import StoreSize
from teamroom.store import archive
from teamroom.store.base import Clock, Store
from teamroom.store.sqlite import aio
from teamroom.store.sqlite.watch import Watcher
from teamroom.store.tx import Tx, sqlite_queries

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000  # while opening (migrations); afterwards the store retries busy itself
BUSY_GIVE_UP_S = 30.0
BUSY_MAX_DELAY_S = 0.010



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


class _Abandoned(Exception):
    """The caller stopped waiting before the transaction committed; it was rolled back (or never begun)."""


class _Call:
    """One transaction handed to aiosqlite's thread, and what the loop and the thread tell each other of it."""

    __slots__ = ("abandoned", "args", "committed", "fn", "result", "write")

    def __init__(self, write: bool, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.write, self.fn, self.args = write, fn, args
        self.abandoned = False  # set by the loop when the caller is cancelled; read by the thread before COMMIT
        self.committed = False  # set by the thread once COMMIT returned
        self.result: Any = None  # what the transaction answered, once committed


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
    elif "disk I/O error" in text:
        hint = (
            "a file of the store (its -wal or -shm beside it) was deleted or replaced while teamroom processes"
            " had it open; stop every teamroom process that uses it, then start them again"
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
        self._identity: tuple[tuple[int, int], tuple[int, int] | None] | None = None
        self._db: aiosqlite.Connection | None = None  # every transaction runs on its thread
        self._watch: sqlite3.Connection | None = None
        self._local_seq = 0
        self._watcher: Watcher | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._db = await aio.connect(self._open_sync)  # opened and migrated on aiosqlite's thread
        try:
            self._watch = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise _unavailable(self.path, exc) from None
        self._watcher = Watcher(self.path, self._data_version)

    def _open_sync(self) -> sqlite3.Connection:
        """Open and migrate; a store busy with another process's migration is waited for, like any busy store."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create {self.path.parent}: {exc.strerror}; pass --db a path you can write"
            ) from None
        return self._retry_busy(self._connect)

    def _connect(self) -> sqlite3.Connection:
        """One attempt to open, check and migrate the store; `_Busy` when another process holds it."""
        try:
            # Made on aiosqlite's thread and kept to it: sqlite3 refuses any use from another thread.
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise _unavailable(self.path, exc) from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._refuse_newer(conn)  # before anything writes to it, WAL mode included
            self._check_identity()  # a second hard link, too
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durability == 'full' else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
            conn.execute("PRAGMA busy_timeout = 0")  # from now on `_retry_busy` waits, so a cancelled call can stop
            self._identity = self._files()
        except BaseException as exc:
            conn.close()  # a store refused at open is left exactly as it was found
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise _Busy() from exc
            if isinstance(exc, sqlite3.Error):
                raise _unavailable(self.path, exc) from None
            raise
        return conn

    # --- the file is still the store (issue 11 point 8) ----------------------------------------

    def _files(self) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """The identity (device, inode) of the store file and of its WAL file, as this process opened them."""
        main = os.stat(self.path)
        try:
            wal = os.stat(f"{self.path}-wal")
        except FileNotFoundError:
            return (main.st_dev, main.st_ino), None
        return (main.st_dev, main.st_ino), (wal.st_dev, wal.st_ino)

    def _check_identity(self) -> None:
        """Refuse to write unless the path still names the file this process opened, with one name only.

        A store file deleted or replaced while servers run, or a WAL file deleted, would take the
        writes this process acknowledges into a file nobody opens again; a second hard link gives
        SQLite two WAL files for one database, and writes through one name vanish for the other.
        Two stat calls, under the write lock, before every write.
        """
        try:
            main = os.stat(self.path)
        except FileNotFoundError:
            raise StoreUnavailable(
                f"store {self.path} was deleted while this server had it open; nothing more is written to it."
                " Restart every teamroom process that uses it (they open the store found at that path then)"
            ) from None
        if self._identity is not None and (main.st_dev, main.st_ino) != self._identity[0]:
            raise StoreUnavailable(
                f"store {self.path} was replaced by another file while this server had it open; nothing more is"
                " written to the old one. Restart every teamroom process that uses it"
            )
        if main.st_nlink > 1:
            raise StoreUnavailable(
                f"store {self.path} has {main.st_nlink} hard links: SQLite keeps a WAL file per name, so writes"
                f" through one name can be lost to the others. Remove the other links (find / -samefile {self.path})"
                " and use one path (a symbolic link is fine)"
            )
        wal = self._identity[1] if self._identity is not None else None
        if wal is not None:
            try:
                now = os.stat(f"{self.path}-wal")
            except FileNotFoundError:
                now = None
            if now is None or (now.st_dev, now.st_ino) != wal:
                raise StoreUnavailable(
                    f"the write-ahead log {self.path}-wal was deleted or replaced while this server had the store"
                    " open; the writes in it are lost to other processes. Stop every teamroom process that uses"
                    " the store, then start them again"
                )

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
        if self._watcher is not None:
            self._watcher.close()  # its waiters return; they find the store closed
        db, self._db = self._db, None
        if db is not None:
            await db.close()  # after the transactions already queued on it
        if self._watch is not None:
            self._watch.close()
        self._watch = self._watcher = None

    # --- transactions ------------------------------------------------------------------------

    def _local_commit(self) -> None:
        self._local_seq += 1
        if self._watcher is not None:
            self._watcher.wake()

    async def _run(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """Run one transaction on aiosqlite's thread; a caller cancelled before COMMIT leaves nothing.

        Cancelled while its transaction is queued, waits for a busy store or runs, the call marks it
        abandoned: the thread rolls it back instead of committing. The call then waits, shielded, for
        the thread to be done with it, so nothing of it is still running when the cancellation goes on.
        """
        db = self._db
        if db is None:
            raise StoreUnavailable("the store is not open")
        call = _Call(write, fn, args)
        try:
            return await aio.run(db, self._transaction, call)
        except anyio.get_cancelled_exc_class():
            call.abandoned = True
            with anyio.CancelScope(shield=True):
                await aio.settle(db)
                if call.committed:  # too late to undo: its answer reaches nobody, so what it took comes back
                    if call.write:
                        self._local_commit()
                    await self._give_back(fn, call.result)
            raise

    def _transaction(self, conn: sqlite3.Connection, call: _Call) -> Any:
        try:
            return self._retry_busy(lambda: self._attempt(conn, call))
        except _Abandoned:
            return None  # nobody awaits the answer any more

    def _retry_busy(self, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` until it does not find the store busy, backing off, for up to BUSY_GIVE_UP_S.

        It runs on aiosqlite's thread, which sleeps here; the event loop goes on meanwhile.
        """
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

    def _attempt(self, conn: sqlite3.Connection, call: _Call) -> Any:
        """One transaction, all or nothing; `_Busy` if another process holds the lock (nothing done)."""
        if call.abandoned:
            raise _Abandoned()
        try:
            conn.execute("BEGIN IMMEDIATE" if call.write else "BEGIN")
            if call.write:
                self._check_identity()
            tx = Tx(conn, self.clock.now_ms(), self._seen, self._queries)
            result = self._apply(tx, call.write, call.fn, call.args)
            if call.abandoned:  # the last moment the caller's cancellation can still undo it
                raise _Abandoned()
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
        call.result, call.committed = result, True
        self._committed(tx)  # here, on the thread, before the next transaction reads what it remembers
        return result

    # --- change notification -----------------------------------------------------------------

    def _data_version(self) -> int:
        assert self._watch is not None, "store is not open"
        return self._watch.execute("PRAGMA data_version").fetchone()[0]

    def change_token(self) -> tuple[int, int]:
        return self._data_version(), self._local_seq

    async def wait_for_change(self, token: Any, timeout: float) -> bool:
        assert self._watcher is not None, "store is not open"
        return await self._watcher.wait(lambda: self.change_token() != token, timeout)

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

"""The SQLite store's watcher: another connection's commit wakes waiters through inotify, an idle wait
costs a few looks at the store, the watch changes hands when its waiter leaves, and without inotify
an adaptive poll does the same job."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import anyio
import pytest

from teamroom.store import open_store
from teamroom.store.sqlite import watch
from teamroom.store.sqlite.watch import Watcher

pytestmark = pytest.mark.anyio

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


class Db:
    """A WAL database with a writer connection and the watcher's own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer = sqlite3.connect(path, isolation_level=None)
        self.writer.execute("PRAGMA journal_mode = WAL")
        self.writer.execute("CREATE TABLE t (x)")
        self.reader = sqlite3.connect(path, isolation_level=None)

    def version(self) -> int:
        return self.reader.execute("PRAGMA data_version").fetchone()[0]

    def changed_since(self):
        token = self.version()
        return lambda: self.version() != token

    def commit(self) -> None:
        self.writer.execute("INSERT INTO t VALUES (1)")


@pytest.fixture
def db(tmp_path: Path):
    db = Db(tmp_path / "w.db")
    yield db
    db.writer.close()
    db.reader.close()


@pytest.fixture
def no_recheck(monkeypatch):
    """Only a notification can wake a waiter within a test's time: the lost-notification recheck is a minute away."""
    monkeypatch.setattr(watch, "RECHECK_S", 60.0)


async def _woken(watcher: Watcher, changed, commit, timeout: float = 30.0) -> bool:
    """Start a wait, commit once it is waiting, and return what the wait returned."""
    got = {}

    async def wait() -> None:
        got["woke"] = await watcher.wait(changed, timeout)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            await commit()
    return got["woke"]


@linux
async def test_another_connections_commit_wakes_a_waiter_through_inotify(db, no_recheck):
    watcher = Watcher(db.path, db.version)

    async def commit() -> None:
        db.commit()

    assert await _woken(watcher, db.changed_since(), commit)
    assert watcher.mode == "inotify"
    assert watcher.checks <= 3  # the look when the watch was put in place, then the write's


@linux
async def test_another_process_commit_wakes_a_waiter(db, no_recheck):
    watcher = Watcher(db.path, db.version)
    insert = "sqlite3.connect(sys.argv[1], isolation_level=None).execute('INSERT INTO t VALUES (2)')"

    async def commit() -> None:
        await anyio.run_process([sys.executable, "-c", f"import sqlite3, sys; {insert}", str(db.path)])

    assert await _woken(watcher, db.changed_since(), commit)
    assert db.reader.execute("SELECT x FROM t").fetchall() == [(2,)]


@linux
async def test_an_idle_wait_looks_at_the_store_only_about_once_a_second(db):
    watcher = Watcher(db.path, db.version)
    assert not await watcher.wait(db.changed_since(), 2.0)
    assert watcher.mode == "inotify"
    assert watcher.checks <= 5  # polling every 2 ms, as before, would have made about 1000


@linux
async def test_one_watch_wakes_every_waiter_of_the_process(db, no_recheck):
    watcher = Watcher(db.path, db.version)
    changed = db.changed_since()
    woke = []

    async def wait() -> None:
        woke.append(await watcher.wait(changed, 30))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            db.commit()
    assert woke == [True] * 5
    assert watcher.checks <= 3  # one watch looked, not five


@linux
async def test_the_watch_changes_hands_when_its_waiter_times_out_or_is_cancelled(db, no_recheck):
    watcher = Watcher(db.path, db.version)
    changed = db.changed_since()
    got, left, scope = {}, anyio.Event(), anyio.CancelScope()

    async def first() -> None:  # the first to wait takes the watch, and leaves by its timeout
        got["first"] = await watcher.wait(changed, 0.2)
        left.set()

    async def second() -> None:  # takes the watch next, and is cancelled
        with scope:
            got["second"] = await watcher.wait(changed, 30)

    async def third() -> None:  # takes the watch last, and sees the commit
        got["third"] = await watcher.wait(changed, 30)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for waiter in (first, second, third):  # they start in this order, all at once
                tg.start_soon(waiter)
            await left.wait()
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            db.commit()
    assert got == {"first": False, "third": True}


class Counter:
    """A version source the test moves by hand, next to a -wal file it writes by hand."""

    def __init__(self, path: Path) -> None:
        self.path, self.value, self.looks = path, 0, 0
        self.looked = anyio.Event()
        self._shows_at: int | None = None

    def __call__(self) -> int:
        self.looks += 1
        if self._shows_at is not None and self.looks >= self._shows_at:
            self.value += 1
            self._shows_at = None
        self.looked.set()
        self.looked = anyio.Event()
        return self.value

    def commit(self, shown_on_look: int) -> None:
        """Write the -wal file; the change shows on the ``shown_on_look``-th look from now."""
        self._shows_at = self.looks + shown_on_look
        with open(f"{self.path}-wal", "ab") as wal:
            wal.write(b"frame")


@linux
async def test_a_write_the_store_does_not_show_yet_is_looked_at_again_soon(tmp_path, no_recheck):
    """A commit writes the -wal file a moment before the WAL index: the first look may see no change."""
    version = Counter(tmp_path / "w.db")
    watcher = Watcher(version.path, version)

    async def commit() -> None:
        while watcher.checks < 1:  # the watch is in place
            await version.looked.wait()
        version.commit(shown_on_look=2)  # the look the notification brings is too early

    assert await _woken(watcher, lambda: version.value != 0, commit)
    assert watcher.checks == 3


@linux
async def test_writes_to_other_files_of_the_directory_are_not_looked_at(tmp_path, no_recheck):
    version = Counter(tmp_path / "w.db")
    watcher = Watcher(version.path, version)

    async def other_files() -> None:
        while watcher.checks < 1:  # the watch is in place
            await version.looked.wait()
        looked = watcher.checks
        for i in range(20):
            (tmp_path / f"other{i}.db-wal").write_bytes(b"frame")  # another store's commit
            await anyio.wait_all_tasks_blocked()
        assert watcher.checks == looked
        watcher.close()

    assert await _woken(watcher, lambda: False, other_files)


async def test_without_inotify_an_adaptive_poll_wakes_waiters_and_slows_down_while_idle(db):
    watcher = Watcher(db.path, db.version, inotify=False)
    assert not await watcher.wait(db.changed_since(), 2.0)
    assert watcher.mode == "poll"
    assert 5 <= watcher.checks <= 25  # 5 ms doubling to 250 ms: about 12 looks in 2 s, not 1000

    async def commit() -> None:
        db.commit()

    assert await _woken(watcher, db.changed_since(), commit)


@linux
async def test_a_directory_inotify_cannot_watch_falls_back_to_polling(tmp_path, caplog):
    version = Counter(tmp_path / "gone" / "w.db")
    watcher = Watcher(version.path, version)
    assert not await watcher.wait(lambda: False, 0.05)
    assert watcher.mode == "poll" and "waits poll the store" in caplog.text


async def test_closing_the_watcher_returns_its_waiters(db):
    watcher = Watcher(db.path, db.version)
    changed = db.changed_since()

    async def close() -> None:
        watcher.close()

    assert await _woken(watcher, changed, close)
    assert await watcher.wait(changed, 30)  # a closed watcher does not wait at all


async def test_the_store_wakes_a_waiter_on_a_commit_of_another_store_on_the_same_file(db_path, no_recheck):
    async with open_store(db_path) as waiting, open_store(db_path) as writing:
        token = waiting.change_token()
        got = {}

        async def wait() -> None:
            got["woke"] = await waiting.wait_for_change(token, 30)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.wait_all_tasks_blocked()
                await writing.register("peer", None, None, None)
        assert got["woke"]

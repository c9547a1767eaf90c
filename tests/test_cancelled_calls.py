"""A call its caller gave up on before its transaction committed leaves nothing (issue 11, point 1).

Transactions run on the store's thread, off the event loop; a cancelled caller marks its
transaction abandoned and the thread rolls it back instead of committing, whether it was still
queued, waiting for another process's write lock, or running.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import anyio
import pytest

from teamroom.store import SQLiteStore
from teamroom.store.rules import locks
from tests.conftest import in_process

CLAIM = ("exclusive", 900, None)


def lock_claims(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT agent, subject FROM events WHERE kind = 'lock_claim' ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.mark.anyio
async def test_a_claim_cancelled_while_another_process_holds_the_write_lock_grants_nothing(db_path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("register", agent="a")
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's long transaction: the claim must wait
        try:
            with anyio.move_on_after(0.3) as waited:  # the client gives up (MCP sends notifications/cancelled)
                await call("claim_lock", agent="a", resources=["src/a.py"])
            assert waited.cancelled_caught
            with anyio.fail_after(10):  # a read queued behind the claim: answered once the claim let go
                seen = json.loads(await call.resource("teamroom://locks"))
            assert seen["locks"] == []
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert (await call("locks", agent="a"))["locks"] == []
        taken = await call("claim_lock", agent="b", resources=["src/a.py"])
        assert taken["granted"] and [lock["resource"] for lock in taken["locks"]] == ["src/a.py"]
    assert lock_claims(db_path) == [("b", "src/a.py")]


@pytest.mark.anyio
async def test_a_transaction_cancelled_while_running_or_queued_is_rolled_back_not_committed(db_path, clock) -> None:
    started, go_on = threading.Event(), threading.Event()

    def claim_then_wait(tx, agent: str) -> object:
        granted = locks.claim(tx, agent, ["src/a.py"], *CLAIM)
        started.set()
        go_on.wait(10)  # the caller is cancelled meanwhile; COMMIT has not happened yet
        return granted

    async with SQLiteStore(db_path, clock=clock) as store:
        scopes: dict[str, anyio.CancelScope] = {}
        cancelled: list[str] = []

        async def run(name: str, fn, *args) -> None:
            with anyio.CancelScope() as scope:
                scopes[name] = scope
                await store._write(fn, *args)
            if scope.cancelled_caught:
                cancelled.append(name)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "running", claim_then_wait, "a")
            await anyio.to_thread.run_sync(started.wait, 10)
            tg.start_soon(run, "queued", locks.claim, "b", ["src/b.py"], *CLAIM)
            await anyio.wait_all_tasks_blocked()  # the second transaction is queued behind the first
            scopes["running"].cancel()
            scopes["queued"].cancel()
            await anyio.wait_all_tasks_blocked()  # both callers marked theirs abandoned and wait for the thread
            go_on.set()
        assert sorted(cancelled) == ["queued", "running"]
        assert (await store.locks(None, None, None, None)).locks == []
        assert (await store.claim_lock("c", ["src/a.py", "src/b.py"], *CLAIM)).granted
    assert lock_claims(db_path) == [("c", "src/a.py"), ("c", "src/b.py")]


@pytest.mark.anyio
async def test_a_transaction_runs_off_the_event_loop(db_path, clock) -> None:
    """The loop sets the event the transaction waits for: on the loop, it would wait out its timeout."""
    go_on = threading.Event()
    async with SQLiteStore(db_path, clock=clock) as store:
        answers: list[bool] = []

        async def read() -> None:
            answers.append(await store._read(lambda tx: go_on.wait(10)))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await anyio.wait_all_tasks_blocked()
                go_on.set()
    assert answers == [True]


class PausedAfterCommit(SQLiteStore):
    """The real SQLite store, paused on its thread right after a COMMIT while ``pause`` is set: the
    moment a caller can be cancelled with its transaction already committed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pause, self.committed, self.go_on = threading.Event(), threading.Event(), threading.Event()

    def _committed(self, tx) -> None:
        super()._committed(tx)
        if self.pause.is_set():
            self.pause.clear()
            self.committed.set()
            self.go_on.wait(10)


async def cancelled_after_commit(store: PausedAfterCommit, verb, *args) -> None:
    """Call ``store.verb(*args)`` and cancel it once its transaction has committed, before it answers."""
    store.pause.set()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await verb(*args)
                pytest.fail("the call answered; it should have been cancelled")

            tg.start_soon(call)
            await anyio.to_thread.run_sync(store.committed.wait, 10)
            scope.cancel()
            store.go_on.set()
    assert scope.cancelled_caught


def events_of(db: Path, *kinds: str) -> list[tuple[str, str, dict]]:
    conn = sqlite3.connect(db)
    try:
        marks = ", ".join("?" * len(kinds))
        rows = conn.execute(f"SELECT kind, subject, data FROM events WHERE kind IN ({marks}) ORDER BY id", kinds)
        return [(kind, subject, json.loads(data or "{}")) for kind, subject, data in rows]
    finally:
        conn.close()


@pytest.mark.anyio
async def test_a_poll_cancelled_after_it_committed_gives_its_lease_back_with_the_attempt_unspent(db_path, clock):
    async with PausedAfterCommit(db_path, clock=clock) as store:
        await store.register("lead", None, None, None)
        await store.register("w", None, None, None)
        sent = await store.send(
            "lead", ["w"], "only once", subject=None, kind="task", payload=None, priority=1, thread_id=None,
            reply_to=None, ttl_seconds=None, max_attempts=1, idempotency_key=None,
        )  # fmt: skip
        await cancelled_after_commit(store, store.lease, "w", 1, 600, None, None)
        inbox = (await store.inbox("w", 10)).messages
        assert [(m.message_id, m.state, m.attempt) for m in inbox] == [(sent.message_id, "queued", 0)]
        again = (await store.lease("w", 1, 600, None, None)).messages
        assert [(m.message_id, m.attempt) for m in again] == [(sent.message_id, 1)], "max_attempts=1: not dead"
    assert [kind for kind, *_ in events_of(db_path, "lease", "lease_returned")] == ["lease", "lease_returned", "lease"]
    assert events_of(db_path, "lease_returned")[0][2] == {"attempt": 0}


@pytest.mark.anyio
async def test_a_claim_cancelled_after_it_committed_releases_what_it_granted_and_keeps_what_was_renewed(
    db_path, clock
):
    async with PausedAfterCommit(db_path, clock=clock) as store:
        held = await store.claim_lock("a", ["src/held.py"], *CLAIM)
        await cancelled_after_commit(store, store.claim_lock, "a", ["src/held.py", "src/new.py"], *CLAIM)
        mine = (await store.locks(None, None, "a", None)).locks
        assert [(lock.resource, lock.token) for lock in mine] == [("src/held.py", held.locks[0].token)]
        assert (await store.claim_lock("b", ["src/new.py"], *CLAIM)).granted
    released = events_of(db_path, "lock_release")
    assert [(subject, data.get("returned")) for _, subject, data in released] == [("src/new.py", True)]

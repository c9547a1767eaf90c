"""A call its caller gave up on before its transaction committed leaves nothing, on PostgreSQL too
(tests/test_cancelled_calls.py for SQLite): whether it was queued, waiting for another server's
write lock, or running."""

from __future__ import annotations

import threading

import anyio
import psycopg
import pytest

from teamroom.store import ManualClock
from teamroom.store.postgres.store import WRITE_LOCK, PostgresStore
from teamroom.store.rules import locks
from tests.test_cancelled_calls import cancelled_after_commit

pytestmark = pytest.mark.anyio

CLAIM = ("exclusive", 900, None)


async def _claims(store: PostgresStore) -> list[tuple[str, str]]:
    return [(e.agent, e.subject) for e in (await store.events(0, 1000, None, ["lock_claim"])).events]


async def test_a_claim_cancelled_while_another_server_holds_the_write_lock_grants_nothing(pg_url):
    async with PostgresStore(pg_url, clock=ManualClock()) as store:
        await store.register("a", None, None, None)
        holder = psycopg.connect(pg_url, autocommit=True)  # another server, in the middle of a long write
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (WRITE_LOCK,))
        try:
            with anyio.move_on_after(0.3) as waited:  # the client gives up
                await store.claim_lock("a", ["src/a.py"], *CLAIM)
            assert waited.cancelled_caught
            with anyio.fail_after(10):  # a read queued behind the claim: answered once the claim let go
                seen = await store.locks(None, None, None, None)
            assert seen.locks == []
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert (await store.locks(None, None, None, None)).locks == []
        assert (await store.claim_lock("b", ["src/a.py"], *CLAIM)).granted
        assert await _claims(store) == [("b", "src/a.py")]


async def test_a_transaction_cancelled_while_running_or_queued_is_rolled_back_not_committed(pg_url):
    started, go_on = threading.Event(), threading.Event()

    def claim_then_wait(tx, agent: str) -> object:
        granted = locks.claim(tx, agent, ["src/a.py"], *CLAIM)
        started.set()
        go_on.wait(10)  # the caller is cancelled meanwhile; COMMIT has not happened yet
        return granted

    async with PostgresStore(pg_url, clock=ManualClock()) as store:
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
            await anyio.wait_all_tasks_blocked()
            go_on.set()
        assert sorted(cancelled) == ["queued", "running"]
        assert (await store.locks(None, None, None, None)).locks == []
        assert (await store.claim_lock("c", ["src/a.py", "src/b.py"], *CLAIM)).granted
        assert await _claims(store) == [("c", "src/a.py"), ("c", "src/b.py")]


class PausedAfterCommit(PostgresStore):
    """The real PostgreSQL store, paused on its thread right after a COMMIT while ``pause`` is set: the
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


async def test_a_poll_cancelled_after_it_committed_gives_its_lease_back_with_the_attempt_unspent(pg_url):
    async with PausedAfterCommit(pg_url, clock=ManualClock()) as store:
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
        leases = (await store.events(0, 100, None, ["lease", "lease_returned"])).events
    assert [(e.kind, e.data.get("attempt")) for e in leases] == [("lease", 1), ("lease_returned", 0), ("lease", 1)]


async def test_a_claim_cancelled_after_it_committed_releases_what_it_granted_and_keeps_what_was_renewed(pg_url):
    async with PausedAfterCommit(pg_url, clock=ManualClock()) as store:
        held = await store.claim_lock("a", ["src/held.py"], *CLAIM)
        await cancelled_after_commit(store, store.claim_lock, "a", ["src/held.py", "src/new.py"], *CLAIM)
        mine = (await store.locks(None, None, "a", None)).locks
        assert [(lock.resource, lock.token) for lock in mine] == [("src/held.py", held.locks[0].token)]
        assert (await store.claim_lock("b", ["src/new.py"], *CLAIM)).granted
        released = (await store.events(0, 100, None, ["lock_release"])).events
    assert [(e.subject, e.data.get("returned")) for e in released] == [("src/new.py", True)]

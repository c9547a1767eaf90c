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

"""The classic double claim: several OS processes leasing from one queue at full speed.

A lease that reads in one statement and writes in the next, outside one IMMEDIATE transaction,
hands the same delivery to two processes within seconds under this load (8-59 doubles in 5 s
measured on this machine). The store leases in one ``BEGIN IMMEDIATE`` transaction, so every
delivery must be leased exactly once here.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import anyio

from teamroom.store import SQLiteStore

MESSAGES = 600
PROCESSES = 4


def _lease_all(db: str, start, out) -> None:
    async def run() -> list[str]:
        store = SQLiteStore(db)
        await store.open()
        leased = []
        start.wait()  # a barrier: nobody leases before every process has its store open
        while True:
            batch = (await store.lease("worker", 1, 3600, None, None)).messages
            if not batch:
                break
            leased.extend(m.message_id for m in batch)
        await store.close()
        return leased

    out.put(anyio.run(run))


async def _fill(db: Path) -> list[str]:
    store = SQLiteStore(db)
    await store.open()
    await store.register("worker", None, None, None)
    opts = dict(
        subject=None, kind="text", payload=None, priority=1, thread_id=None, reply_to=None,
        ttl_seconds=None, max_attempts=5, idempotency_key=None,
    )  # fmt: skip
    ids = [(await store.send("lead", ["worker"], f"job {i}", **opts)).message_id for i in range(MESSAGES)]
    await store.close()
    return ids


def test_processes_racing_to_lease_never_get_the_same_delivery(db_path):
    sent = anyio.run(_fill, db_path)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(PROCESSES), ctx.Queue()
    workers = [ctx.Process(target=_lease_all, args=(str(db_path), start, out)) for _ in range(PROCESSES)]
    for w in workers:
        w.start()
    results = [out.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=10)
    leased = [m for per in results for m in per]
    assert len(leased) == len(set(leased)), f"{len(leased) - len(set(leased))} deliveries leased twice"
    assert sorted(leased) == sorted(sent)
    assert sum(1 for per in results if per) >= 2, "the processes really raced"

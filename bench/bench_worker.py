"""Messages/s through ``teamroom worker`` whose command is ``true``, next to the same poll+ack loop with no command.

    python bench/bench_worker.py [--messages 300] [--rounds 5]

Both run on one store file in the same run, in alternating rounds (worker, loop, worker, loop, ...),
so a busy moment of the machine falls on both. Each round queues its messages first, then is
measured from the first lease to the last ack by the times in the store's audit log, so neither the
worker process's start nor the queueing counts. The worker takes one message at a time
(``--concurrency 1``): poll(limit=1), run ``true`` with the message on stdin, ack. The loop makes
the same calls, in this process, with nothing run between them. A third column, also interleaved,
starts ``true`` the way the worker does (three pipes, a new session, the message fed on stdin) with
no store at all: what process creation alone costs here.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Report  # noqa: E402
from teamroom.schemas import Event  # noqa: E402
from teamroom.store import Store, open_store  # noqa: E402
from teamroom.tools import agents, messages  # noqa: E402


async def _queue(store: Store, to: str, n: int) -> int:
    """Send ``n`` messages to ``to``; the id of the newest event before the round."""
    for i in range(n):
        await messages.send(store, "lead", to, f"job {i}: review src/app.py")
    return (await messages.events(store, limit=1)).events[-1].id


async def _events_after(store: Store, after: int, agent: str) -> list[Event]:
    found: list[Event] = []
    while page := (await messages.events(store, after_id=after, limit=1000, agent=agent)).events:
        found += page
        after = page[-1].id
    return found


async def _rate(store: Store, after: int, agent: str, n: int) -> float:
    """Messages/s from the round's first lease to its last ack, by the audit log's times."""
    found = await _events_after(store, after, agent)
    leases = [e for e in found if e.kind == "lease"]
    acks = [e for e in found if e.kind == "ack"]
    assert len(leases) == n and len(acks) == n, (len(leases), len(acks))
    seconds = (datetime.fromisoformat(acks[-1].at) - datetime.fromisoformat(leases[0].at)).total_seconds()
    return n / seconds


async def _drained(store: Store, agent: str) -> None:
    """Wait until ``agent`` has nothing left, looking only now and then: the figure comes from the
    audit log, and a waiter woken by every commit would take CPU from the worker it measures."""
    while (await messages.inbox(store, agent, 1)).messages:
        await anyio.sleep(0.25)


async def worker_round(store: Store, db: Path, n: int) -> float:
    after = await _queue(store, "bot", n)
    teamroom = Path(sys.executable).with_name("teamroom")
    command = [str(teamroom)] if teamroom.exists() else [sys.executable, "-m", "teamroom"]
    true = shutil.which("true") or "true"
    process = subprocess.Popen(
        [*command, "worker", "bot", "--db", str(db), "--log-level", "WARNING", "--", true],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with anyio.fail_after(600):
            await _drained(store, "bot")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    return await _rate(store, after, "bot", n)


async def loop_round(store: Store, n: int) -> float:
    after = await _queue(store, "loop", n)
    for _ in range(n):
        got = await messages.poll(store, "loop", limit=1, lease_seconds=60)
        await messages.ack(store, "loop", [got.messages[0].receipt])
    return await _rate(store, after, "loop", n)


async def spawn_round(n: int) -> float:
    """Messages/s if all a worker did were start ``true`` and wait for it, as `Worker._execute` does."""
    true, stdin = shutil.which("true") or "true", b'{"body": "job: review src/app.py"}'
    started = time.perf_counter()
    for _ in range(n):
        process = await anyio.open_process([true], start_new_session=True)
        async with process:  # closes the pipes, waits for the exit
            assert process.stdin is not None
            with contextlib.suppress(anyio.BrokenResourceError, OSError):  # true may exit before reading
                await process.stdin.send(stdin)
            await process.stdin.aclose()
            await process.wait()
    return n / (time.perf_counter() - started)


async def main(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        async with open_store(db) as store:
            for name in ("lead", "bot", "loop"):
                await agents.register(store, name)
            await loop_round(store, 20)  # warm-up: the store's pages and this process's code paths
            worker, loop, spawn = [], [], []
            print(f"{n} messages a round, {rounds} rounds each, alternating; messages/s", flush=True)
            print(f"  {'round':<6} {'worker (true)':>14} {'poll+ack loop':>14} {'spawn true':>12}", flush=True)
            for r in range(rounds):
                worker.append(await worker_round(store, db, n))
                loop.append(await loop_round(store, n))
                spawn.append(await spawn_round(n))
                print(f"  {r + 1:<6} {worker[-1]:14.1f} {loop[-1]:14.1f} {spawn[-1]:12.1f}", flush=True)
    w, lo, sp = statistics.median(worker), statistics.median(loop), statistics.median(spawn)
    report = Report("worker")
    report.header("medians (floor: the poll+ack loop with no command)")
    report.add("worker running `true`: messages/s", w, "msg/s", lo, spread=[min(worker), max(worker)])
    report.add("poll+ack loop, no command: messages/s", lo, "msg/s", lo, spread=[min(loop), max(loop)])
    report.add("worker: ms per message", 1000 / w, "ms", 1000 / lo)
    report.add("the command's share: ms per message over the loop", 1000 / w - 1000 / lo, "ms")
    report.add("starting `true` alone (no store): messages/s", sp, "msg/s", lo, spread=[min(spawn), max(spawn)])
    report.add("starting `true` alone: ms per message", 1000 / sp, "ms")
    print(f"\nwritten: {report.save()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="messages a round (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each (default 5)")
    args = parser.parse_args()
    anyio.run(main, args.messages, args.rounds)

"""Waiting across processes: how fast a commit wakes a blocked poll, and what idle waiters cost.

    python bench/bench_wake.py [--rounds 60] [--servers 10] [--seconds 10]
    PYTHONPATH=/elsewhere/src python bench/bench_wake.py    # measure another checkout (e.g. main's)

Wake-up: a waiter `teamroom serve` holds ``poll(wait_seconds=20)``; another process sends to it.
Two senders, interleaved round by round:
  - this bench process, through the store itself: the time from its commit (known to the
    microsecond: ``perf_counter`` is the machine's monotonic clock) to the poll's reply reaching
    the waiter's client. Floor: a plain ``poll`` round trip with a message waiting (a request leg,
    a lease, a reply leg; the wake-up has no request leg but has the watcher's reaction);
  - a second `teamroom serve` (``send`` over stdio): from the send's start to the poll's reply,
    with the send's own round trip as the floor (the commit lies inside it).
Underneath, the store alone: a child process commits, and this process's `wait_for_change` returns;
the floor is the same child answering on a pipe (how long waking another process takes at all).
Idle cost: ``--servers`` servers each holding an idle ``poll(wait_seconds=50)``, and alongside, over
the same window, as many idle servers with no poll (the floor): utime+stime from /proc/<pid>/stat,
as % of one core, all servers of a group together.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import anyio.streams.text
from mcp import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import teamroom  # noqa: E402
from bench.common import Report, client, summary, teamroom_params  # noqa: E402
from teamroom.store import open_store  # noqa: E402
from teamroom.tools import messages as message_tools  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CHILD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("CREATE TABLE IF NOT EXISTS bench_wake (x)")
for line in sys.stdin:
    if line.startswith("commit"):
        conn.execute("INSERT INTO bench_wake VALUES (1)")
    print(time.perf_counter(), flush=True)
"""


async def store_wake(report: Report, tmp: Path, rounds: int) -> None:
    db = tmp / "store.db"
    commit_ms, pipe_ms = [], []
    async with open_store(db) as store, await anyio.open_process([sys.executable, "-c", CHILD, str(db)]) as child:
        lines = anyio.streams.text.TextReceiveStream(child.stdout)
        buffered = ""

        async def ask(what: str) -> float:
            nonlocal buffered
            await child.stdin.send(f"{what}\n".encode())
            while "\n" not in buffered:
                buffered += await lines.receive()
            line, buffered = buffered.split("\n", 1)
            return float(line)

        await ask("ping")
        for i in range(rounds + 5):
            token = store.change_token()
            woke = {}

            async def wait(token=token, woke=woke) -> None:
                await store.wait_for_change(token, 5)
                woke["at"] = time.perf_counter()

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.sleep(0.05)
                committed = await ask("commit")
            sent = await ask("ping")
            received = time.perf_counter()
            if i >= 5:  # warm-up
                commit_ms.append((woke["at"] - committed) * 1000)
                pipe_ms.append((received - sent) * 1000)
    c, f = summary(commit_ms), summary(pipe_ms)
    report.header(f"the store alone, {rounds} rounds: a child's commit -> wait_for_change returns here (ms)")
    report.add("commit -> wait_for_change returns p50", c["p50"], "ms", f["p50"])
    report.add("commit -> wait_for_change returns p95", c["p95"], "ms", f["p95"])
    report.add("  floor: the child's line on a pipe -> read here p50", f["p50"], "ms")


async def wake(report: Report, tmp: Path, rounds: int) -> None:
    db = tmp / "wake.db"
    local_ms, local_floor, serve_ms, serve_floor, beyond_send = [], [], [], [], []
    async with AsyncExitStack() as stack:
        waiter = await stack.enter_async_context(client(_params(db, "waiter")))
        sender = await stack.enter_async_context(client(_params(db, "sender")))
        store = await stack.enter_async_context(open_store(db))
        await waiter("register")
        await sender("register")

        async def blocked_poll(trigger) -> tuple[float, float]:
            """(when the trigger committed or started, when the blocked poll's reply came back)."""
            got: dict[str, float] = {}

            async def block() -> None:
                result = await waiter("poll", wait_seconds=20)
                got["at"] = time.perf_counter()
                await waiter("ack", receipts=[m["receipt"] for m in result["messages"]])

            async with anyio.create_task_group() as tg:
                tg.start_soon(block)
                await anyio.sleep(0.05)  # let the poll reach its wait (a bench may sleep; tests may not)
                started = await trigger()
            return started, got["at"]

        async def from_store() -> float:
            await message_tools.send(store, "bench", "waiter", "wake")
            return time.perf_counter()  # the commit has just returned

        for _ in range(5):  # warm-up
            await blocked_poll(from_store)
        for _ in range(rounds):
            committed, at = await blocked_poll(from_store)
            local_ms.append((at - committed) * 1000)

            await message_tools.send(store, "bench", "waiter", "floor")
            t0 = time.perf_counter()
            got = await waiter("poll")
            local_floor.append((time.perf_counter() - t0) * 1000)
            await waiter("ack", receipts=[m["receipt"] for m in got["messages"]])

            sent: dict[str, float] = {}

            async def from_serve(sent=sent) -> float:
                sent["start"] = time.perf_counter()
                await sender("send", to="waiter", body="wake")
                sent["end"] = time.perf_counter()
                return sent["start"]

            start, at = await blocked_poll(from_serve)
            serve_ms.append((at - start) * 1000)
            serve_floor.append((sent["end"] - sent["start"]) * 1000)
            beyond_send.append((at - sent["end"]) * 1000)

    report.header(f"cross-process wake-up, {rounds} interleaved rounds (ms)")
    for what, samples, floor in (
        ("commit (bench process) -> poll reply at its client", local_ms, local_floor),
        ("send start (2nd serve) -> poll reply", serve_ms, serve_floor),
    ):
        s, f = summary(samples), summary(floor)
        report.add(f"{what} p50", s["p50"], "ms", f["p50"])
        report.add(f"{what} p95", s["p95"], "ms", f["p95"])
    f = summary(local_floor)
    report.add("  floor: plain poll round trip, a message waiting p50", f["p50"], "ms")
    f = summary(serve_floor)
    report.add("  floor: send round trip (2nd serve) p50", f["p50"], "ms")
    b = summary(beyond_send)
    report.add("poll reply after the send's reply (may be < 0) p50", b["p50"], "ms", p95=b["p95"])


def _params(db: Path, agent: str, tag: str = "") -> StdioServerParameters:
    """`teamroom serve` on ``db``; servers see this bench's PYTHONPATH, so that another checkout can be measured."""
    params = teamroom_params(db, agent)
    params.env = {**(params.env or {}), "TEAMROOM_BENCH_TAG": tag}
    if "PYTHONPATH" in os.environ:
        params.env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return params


def _pid(tag: str) -> int:
    marker = f"TEAMROOM_BENCH_TAG={tag}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    return int(entry.name)
            except OSError:
                continue
    raise LookupError(f"no server tagged {tag}")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return total / TICKS


async def idle(report: Report, tmp: Path, servers: int, seconds: float) -> None:
    db = tmp / "idle.db"
    groups: dict[str, list] = {"polling": [], "idle": []}
    async with AsyncExitStack() as stack:
        for i in range(servers):
            for group, calls in groups.items():
                tag = uuid.uuid4().hex
                call = await stack.enter_async_context(client(_params(db, f"{group}{i}", tag)))
                await call("register")
                calls.append((call, _pid(tag)))
        pids = {group: [pid for _, pid in calls] for group, calls in groups.items()}
        async with anyio.create_task_group() as tg:
            for call, _ in groups["polling"]:
                tg.start_soon(lambda call=call: call("poll", wait_seconds=50))
            await anyio.sleep(2.0)  # every poll is waiting and every server has settled
            before = {group: _cpu_seconds(p) for group, p in pids.items()}
            t0 = time.monotonic()
            await anyio.sleep(seconds)
            elapsed = time.monotonic() - t0
            used = {group: _cpu_seconds(p) - before[group] for group, p in pids.items()}
            tg.cancel_scope.cancel()
    floor = used["idle"] / elapsed * 100
    report.header(f"idle cost over the same {elapsed:.1f} s window, {servers} servers per group (% of one core)")
    report.add(f"{servers} servers, each in poll(wait_seconds=50)", used["polling"] / elapsed * 100, "%", floor)
    report.add(f"{servers} idle servers, no poll (floor)", floor, "%")


async def main(args: argparse.Namespace) -> None:
    report = Report("wake")
    print(f"bench_wake, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores,"
          f" load {os.getloadavg()[0]:.2f}, teamroom from {Path(teamroom.__file__).parent}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="teamroom-wake-") as tmp:
        await store_wake(report, Path(tmp), args.rounds)
        await wake(report, Path(tmp), args.rounds)
        await idle(report, Path(tmp), args.servers, args.seconds)
    print(f"\nwritten: {report.save()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    anyio.run(main, parser.parse_args())

"""Many server processes hammering one store at once: no call may fail, and how long calls take.

    python -m tests.chaos.contention --processes 8 --seconds 30

Each process has its own MCP client and agent; all start together and, until time is up, send
to a random peer, poll, ack, claim and release a lock (its own file, and now and then one all of
them want), and now and then heartbeat, list agents and read a thread. Every
call must succeed: a busy store waits and retries inside the server (SPEC §6), so "database is
locked" or a timeout must never reach a caller. Prints latency percentiles per tool, next to the
same workload run by one process alone (the floor, measured in the same run).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from ..procs import serve_command

CALL_TIMEOUT_S = 60.0


@dataclass
class Hammered:
    processes: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # tool -> ms
    errors: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def percentiles(self, tool: str | None = None) -> dict[str, float]:
        samples = sorted(self.latencies[tool] if tool else [x for v in self.latencies.values() for x in v])
        if not samples:
            return {}

        def at(q: float) -> float:
            return samples[min(len(samples) - 1, int(q * len(samples)))]

        return {"p50": statistics.median(samples), "p95": at(0.95), "p99": at(0.99), "max": samples[-1]}

    def table(self) -> str:
        lines = [
            f"{self.processes} processes, {self.seconds:g} s: {self.calls} calls, {self.calls / self.seconds:.0f}/s"
        ]
        lines.append(f"{'tool':>12} {'calls':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for tool in [*sorted(self.latencies), None]:
            p = self.percentiles(tool)
            count = len(self.latencies[tool]) if tool else self.calls
            lines.append(
                f"{tool or 'all':>12} {count:>7} {p['p50']:>8.2f} {p['p95']:>8.2f} {p['p99']:>8.2f} {p['max']:>8.1f}"
            )
        return "\n".join(lines)


async def hammer(db: Path, processes: int, seconds: float, seed: int = 1) -> Hammered:
    """Run the workload with ``processes`` servers on ``db``; every call's latency and every error."""
    out = Hammered(processes, seconds)
    names = [f"w{i}" for i in range(processes)]
    command, args = serve_command()
    ready = anyio.Event()
    connected = 0

    async def worker(name: str, rng: random.Random) -> None:
        nonlocal connected
        params = StdioServerParameters(command=command, args=[*args, "--db", str(db)])
        async with Client(params, mode="legacy") as client:

            async def call(tool: str, **arguments) -> dict:
                started = time.perf_counter()
                try:
                    with anyio.fail_after(CALL_TIMEOUT_S):
                        result = await client.call_tool(tool, {"agent": name, **arguments})
                except TimeoutError:
                    out.errors.append(f"{name} {tool}: no answer in {CALL_TIMEOUT_S:g} s")
                    return {}
                out.latencies[tool].append((time.perf_counter() - started) * 1000)
                if result.is_error:
                    out.errors.append(f"{name} {tool}: {result.content[0].text[:200]}")
                    return {}
                return result.structured_content or {}

            await call("register", role="worker")
            locking = "claim_lock" in {t.name for t in (await client.list_tools()).tools}
            connected += 1
            if connected == processes:
                ready.set()
            await ready.wait()  # everyone starts hammering at the same moment
            deadline = time.monotonic() + seconds
            turn = 0
            while time.monotonic() < deadline:
                turn += 1
                sent = await call("send", to=rng.choice(names), body=f"{name} {turn} " + "x" * rng.randint(10, 2000))
                polled = await call("poll", limit=10, lease_seconds=60)
                receipts = [m["receipt"] for m in polled.get("messages", [])]
                if receipts:
                    await call("ack", receipts=receipts)
                if locking:  # its own file, and now and then the one everybody wants
                    wanted = [f"src/{name}.py", *(["deploy:prod"] if turn % 5 == 0 else [])]
                    if (await call("claim_lock", resources=wanted, ttl_seconds=30)).get("granted"):
                        await call("release_lock", resources=wanted)
                if turn % 10 == 0:
                    await call("heartbeat", status="working", task=f"turn {turn}")
                    await call("agents")
                    if sent:
                        await call("thread", thread_id=sent["thread_id"])

    async with anyio.create_task_group() as tg:
        for i, name in enumerate(names):
            tg.start_soon(worker, name, random.Random(seed * 1000 + i))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.contention", description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="teamroom-contention-") as tmp:
        floor = anyio.run(hammer, Path(tmp) / "floor.db", 1, min(args.seconds, 10))
        loaded = anyio.run(hammer, Path(tmp) / "loaded.db", args.processes, args.seconds)
    print("floor:", floor.table(), sep="\n")
    print(loaded.table())
    p50, floor_p50 = loaded.percentiles()["p50"], floor.percentiles()["p50"]
    print(f"p50 ratio {args.processes} processes / 1 process: {p50 / floor_p50:.1f}x")
    for error in loaded.errors[:20]:
        print("error:", error)
    print(f"errors: {len(floor.errors) + len(loaded.errors)}")
    return 1 if floor.errors or loaded.errors else 0


if __name__ == "__main__":
    sys.exit(main())

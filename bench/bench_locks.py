"""Claim latency: uncontended, contended by 5 processes, and against 10 .. 10,000 live locks.

Run on demand (not part of the tests):

    .venv/bin/python bench/bench_locks.py            # everything, about a minute
    .venv/bin/python bench/bench_locks.py --scale 10,1000,10000,100000

Prints medians (and p95) in milliseconds, each next to a floor measured in the same run:
an empty write transaction for the store-level figures, a stdio round trip of `heartbeat`
for the process figures.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from teamroom import paths
from teamroom.store import SQLiteStore
from teamroom.tools import locks as lock_tools

ROOT = Path(__file__).resolve().parent.parent


def ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def row(label: str, samples: list[float], floor: float | None = None) -> str:
    median, p95 = ms(samples)
    ratio = "" if floor is None else f"{median / floor:8.1f}x"
    return f"  {label:<46} {median:9.3f} {p95:9.3f} {ratio}"


# --- store level: latency against the number of live locks ----------------------------------


MIXES = {
    "typical": "1% are globs anywhere in the tree ('**/*.gen7'), which the suffix index sets aside",
    "worst": "1% are globs anywhere ending in .py ('**/gen7/*.py'): every .py claim must match them",
}


def live_lock_set(count: int, mix: str = "typical") -> list[str]:
    """Locks that can all be held at once: 90% files in 100 directories, 9% globs over a directory's
    Python files, 1% globs anywhere in the tree (see MIXES)."""
    out = []
    for i in range(count):
        d = i % 100
        if i % 100 == 99:
            out.append(f"**/*.gen{i}" if mix == "typical" else f"**/gen{i}/*.py")
        elif i % 10 == 9:
            out.append(f"src/d{d}/sub{i}/*.py")
        else:
            out.append(f"src/d{d}/f{i}.py")
    return out


def held_file(index: int) -> str:
    """The file at ``index`` (a multiple of 10) of `live_lock_set`."""
    return f"src/d{index % 100}/f{index}.py"


async def fill(store: SQLiteStore, count: int, mix: str) -> None:
    """Insert the live locks directly (claiming 100,000 one by one would take minutes), 100 per holder."""
    resources = [paths.parse(r) for r in live_lock_set(count, mix)]

    def insert(tx) -> None:
        first = tx.one("UPDATE fence SET token = token + ? WHERE id = 1 RETURNING token", (count,))[0] - count + 1
        tx.conn.executemany(
            "INSERT INTO locks (resource, kind, prefix, rsuffix, holder, mode, token, reason, ttl_ms, acquired_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, 'exclusive', ?, 'bench', 86400000, ?, ?)",
            [
                (r.text, r.kind, r.prefix, r.suffix[::-1], f"holder{i // 100}", first + i, tx.now, tx.now + 86_400_000)
                for i, r in enumerate(resources)
            ],
        )

    await store._write(insert)
    sample = await lock_tools.claim_lock(store, "check", live_lock_set(count, mix)[-100:])
    assert len(sample.conflicts) + sample.more_conflicts == min(count, 100), "every live lock is in place"


async def store_scale(counts: list[int], rounds: int, mix: str) -> None:
    print(f"\nstore level, {mix} mix: {MIXES[mix]}")
    print(f"(tools.locks.claim_lock on one SQLiteStore, median of {rounds}), ms:")
    print(f"  {'':<46} {'median':>9} {'p95':>9} {'vs floor':>9}")
    baseline: dict[str, float] = {}
    for count in counts:
        with tempfile.TemporaryDirectory() as tmp:
            store = SQLiteStore(Path(tmp) / "bench.db")
            await store.open()
            try:
                await fill(store, count, mix)
                floor = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    await store._write(lambda tx: None)
                    floor.append(time.perf_counter() - started)
                floor_ms = ms(floor)[0]
                cases = {
                    "new file": lambda i: [f"src/d{i % 100}/new{i}.py"],
                    "new directory glob": lambda i: [f"src/d{i % 100}/new{i}/*.py"],
                    "10 new files": lambda i: [f"src/d{(i + k) % 100}/new{i}_{k}.py" for k in range(10)],
                    "held file (refused)": lambda i, count=count: [held_file((i * 10) % count)],
                }
                print(f"  {count:,} live locks   (floor: empty write transaction {floor_ms:.3f} ms)")
                for name, make in cases.items():
                    samples = []
                    for i in range(rounds):
                        resources = make(i)
                        started = time.perf_counter()
                        result = await lock_tools.claim_lock(store, "bench", resources)
                        samples.append(time.perf_counter() - started)
                        assert result.granted is not name.startswith("held"), result.conflicts[:1]
                        if result.granted:
                            await store.release_lock("bench", None)
                    baseline.setdefault(name, ms(samples)[0])
                    growth = ms(samples)[0] / baseline[name]
                    print(row(f"claim {name}", samples, floor_ms) + f"   {growth:5.2f}x of {counts[0]:,} locks")
            finally:
                await store.close()


# --- processes: uncontended and contended, over stdio ---------------------------------------


def _params(db: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "teamroom", "serve", "--db", str(db)])


async def _call(client: Client, tool: str, **arguments) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def uncontended(db: Path, rounds: int) -> None:
    async with Client(_params(db)) as client:
        floor, claims = [], []
        for i in range(rounds):
            started = time.perf_counter()
            await _call(client, "heartbeat", agent="solo")
            floor.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = await _call(client, "claim_lock", agent="solo", resources=[f"src/file{i}.py"])
            claims.append(time.perf_counter() - started)
            assert result["granted"]
            await _call(client, "release_lock", agent="solo")
    floor_ms = ms(floor)[0]
    print(f"\none `teamroom serve` process over stdio, median of {rounds}, ms:")
    print(f"  {'':<46} {'median':>9} {'p95':>9} {'vs floor':>9}")
    print(row("heartbeat round trip (floor)", floor, floor_ms))
    print(row("claim_lock, uncontended", claims, floor_ms))


async def contended(db: Path, processes: int, files: int, rounds: int) -> None:
    """Every process claims a random one of ``files`` (releasing it when granted), all at once.

    Two floors: a heartbeat with the processes taking turns, and heartbeats from all of them at
    once (plain write contention, nothing to do with locks).
    """
    alone: list[float] = []
    together: list[float] = []
    samples: list[float] = []
    granted = 0
    turn = anyio.Lock()
    phase = [anyio.Event(), anyio.Event(), anyio.Event()]
    arrived = [0, 0, 0]

    async def barrier(step: int) -> None:
        arrived[step] += 1
        if arrived[step] == processes:
            phase[step].set()
        await phase[step].wait()

    async def worker(index: int) -> None:
        nonlocal granted
        agent = f"p{index}"
        async with Client(_params(db)) as client:
            await barrier(0)
            async with turn:
                for _ in range(rounds // 5):
                    started = time.perf_counter()
                    await _call(client, "heartbeat", agent=agent)
                    alone.append(time.perf_counter() - started)
            await barrier(1)
            for _ in range(rounds):
                started = time.perf_counter()
                await _call(client, "heartbeat", agent=agent)
                together.append(time.perf_counter() - started)
            await barrier(2)
            for _ in range(rounds):
                target = f"src/shared{random.randrange(files)}.py"
                started = time.perf_counter()
                result = await _call(client, "claim_lock", agent=agent, resources=[target])
                samples.append(time.perf_counter() - started)
                if result["granted"]:
                    granted += 1
                    await _call(client, "release_lock", agent=agent)

    async with anyio.create_task_group() as tg:
        for index in range(processes):
            tg.start_soon(worker, index)
    floor_ms = ms(together)[0]
    print(f"\n{processes} processes racing for {files} files (claim, release if granted; {rounds} claims each), ms:")
    print(f"  {'':<46} {'median':>9} {'p95':>9} {'vs floor':>9}")
    print(row("heartbeat, one process at a time", alone, floor_ms))
    print(row(f"heartbeat, {processes} processes at once (floor)", together, floor_ms))
    print(row("claim_lock, contended", samples, floor_ms) + f"   {granted / len(samples):.0%} granted")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="10,1000,10000", help="live lock counts (default 10,1000,10000)")
    parser.add_argument("--rounds", type=int, default=300, help="claims per measurement (default 300)")
    parser.add_argument("--skip-processes", action="store_true", help="store level only")
    args = parser.parse_args()
    print(f"teamroom lock bench, python {sys.version.split()[0]}")
    if not args.skip_processes:
        with tempfile.TemporaryDirectory() as tmp:
            await uncontended(Path(tmp) / "solo.db", args.rounds)
        with tempfile.TemporaryDirectory() as tmp:
            await contended(Path(tmp) / "race.db", processes=5, files=8, rounds=args.rounds // 2)
    for mix in MIXES:
        await store_scale([int(n) for n in args.scale.split(",")], args.rounds, mix)


if __name__ == "__main__":
    anyio.run(main)

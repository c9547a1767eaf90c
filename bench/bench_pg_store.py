"""The store's hot cycle on PostgreSQL next to SQLite: send + lease + ack, in-process, no MCP.

    python bench/bench_pg_store.py [--url postgresql://...] [--n 300] [--rounds 5]

Each cycle is three verbs, three transactions (each also writes its audit events). PostgreSQL's
store takes the database's clock; SQLite's the machine's. Without ``--url`` a private cluster is
started as the tests start one (tests/pg.py), on loopback, durability off (as SQLite here runs
synchronous=NORMAL). Rounds are interleaved; the figure is the median cycles/s, with the min-max.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.pg import Cluster, admin, with_schema  # noqa: E402

from teamroom.store import Store, open_store  # noqa: E402

OPTS = dict(subject=None, kind="text", payload=None, priority=1, thread_id=None, reply_to=None,
            ttl_seconds=None, max_attempts=5, idempotency_key=None)  # fmt: skip


async def cycles(store: Store, n: int) -> float:
    async def cycle() -> None:
        await store.send("a", ["b"], "hello", **OPTS)
        leased = await store.lease("b", 1, 300, None, None)
        await store.ack("b", [leased.messages[0].receipt])

    for _ in range(20):
        await cycle()
    started = time.perf_counter()
    for _ in range(n):
        await cycle()
    return n / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    cluster = None if args.url else Cluster.start()
    url = args.url or cluster.url
    try:
        if cluster is not None:
            with admin(cluster) as conn:
                conn.execute("CREATE SCHEMA bench")
            url = with_schema(url, "bench")
        with tempfile.TemporaryDirectory() as tmp:
            stores = {"sqlite": open_store(Path(tmp) / "bench.db"), "postgres": open_store(url)}
            for store in stores.values():
                await store.open()
                for name in ("a", "b"):
                    await store.register(name, None, None, None)
            rates: dict[str, list[float]] = {name: [] for name in stores}
            for _ in range(args.rounds):
                for name, store in stores.items():
                    rates[name].append(await cycles(store, args.n))
            for store in stores.values():
                await store.close()
        print(f"send+lease+ack, {args.n} cycles x {args.rounds} rounds, interleaved")
        for name, got in rates.items():
            med = statistics.median(got)
            print(f"  {name:9} {med:6.0f} cycles/s ({min(got):.0f}-{max(got):.0f})  {1e3 / med:5.2f} ms a cycle")
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a PostgreSQL store to use (default: start a private cluster)")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    anyio.run(main, parser.parse_args())

"""Which PostgreSQL driver for the store: psycopg 3 or asyncpg, on a raw hot-verb loop.

    python bench/bench_pg_driver.py [--url postgresql://...] [--n 2000] [--rounds 5]

One "verb" is one transaction shaped like a lease: take the write lock (a transaction-level
advisory lock), insert a delivery, pick the oldest queued one ``FOR UPDATE SKIP LOCKED`` and mark
it leased. The store's rules are synchronous functions of a transaction (`teamroom.store.rules`),
so the ways a driver can run them are:

- psycopg-thread: a sync psycopg connection; the whole transaction runs on a worker thread, one
  thread hop per verb (what `PostgresStore` does);
- asyncpg-bridge: asyncpg's connection lives on the event loop, the rule runs on a worker thread
  and each statement hops back to the loop (``anyio.from_thread.run``), two hops per statement;
- asyncpg-native: every statement awaited on the loop, no thread at all. Not usable by the rules
  as they are (they would have to become async); shown as asyncpg's best case;
- psycopg-loop: the sync psycopg transaction run right on the loop: the floor of one round trip
  per statement, with nothing else in the way (and the loop blocked meanwhile).

Without ``--url`` a private cluster is started as the tests start one (tests/pg.py). Rounds are
interleaved so that noise from the machine hits every variant alike; the figures are the median
verbs/s over the rounds, with the min-max spread, and the client process's CPU time per verb.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.to_thread
import asyncpg
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.pg import Cluster  # noqa: E402

LOCK = 7_472_001
SCHEMA = """
DROP TABLE IF EXISTS bench_deliveries;
CREATE TABLE bench_deliveries (
    id bigserial PRIMARY KEY, recipient text COLLATE "C" NOT NULL, state text NOT NULL,
    visible_at bigint NOT NULL, receipt text);
CREATE INDEX bench_ready ON bench_deliveries (recipient, id) WHERE state = 'queued';
"""
INSERT = "INSERT INTO bench_deliveries (recipient, state, visible_at) VALUES ({}, 'queued', {})"
PICK = (
    "SELECT id FROM bench_deliveries WHERE recipient = {} AND state = 'queued' ORDER BY id LIMIT 1"
    " FOR UPDATE SKIP LOCKED"
)
LEASE = "UPDATE bench_deliveries SET state = 'leased', receipt = {}, visible_at = {} WHERE id = {}"


def pg_sql(template: str) -> str:
    return template.format(*["%s"] * template.count("{}"))


def apg_sql(template: str) -> str:
    return template.format(*[f"${i + 1}" for i in range(template.count("{}"))])


def psycopg_verb(conn: psycopg.Connection, i: int) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        conn.execute(pg_sql(INSERT), ("w", i))
        row = conn.execute(pg_sql(PICK), ("w",)).fetchone()
        conn.execute(pg_sql(LEASE), (f"r{i}", i + 300_000, row[0]))


async def asyncpg_native_verb(conn: asyncpg.Connection, i: int) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK)
        await conn.execute(apg_sql(INSERT), "w", i)
        row = await conn.fetchrow(apg_sql(PICK), "w")
        await conn.execute(apg_sql(LEASE), f"r{i}", i + 300_000, row[0])


def asyncpg_bridged_verb(conn: asyncpg.Connection, i: int) -> None:
    """The rule on a worker thread; each statement runs on the loop (two hops)."""
    run = anyio.from_thread.run
    tr = conn.transaction()
    run(tr.start)
    try:
        run(conn.execute, "SELECT pg_advisory_xact_lock($1)", LOCK)
        run(conn.execute, apg_sql(INSERT), "w", i)
        row = run(conn.fetchrow, apg_sql(PICK), "w")
        run(conn.execute, apg_sql(LEASE), f"r{i}", i + 300_000, row[0])
    except BaseException:
        run(tr.rollback)
        raise
    run(tr.commit)


async def rate(n: int, verb: Callable[[int], Awaitable[None]]) -> tuple[float, float]:
    """Verbs per second, and this process's CPU time per verb in us (steadier on a busy machine)."""
    for i in range(20):
        await verb(i)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        await verb(i)
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1e6


async def main(args: argparse.Namespace) -> None:
    cluster = None if args.url else Cluster.start()
    url = args.url or cluster.url
    try:
        setup = psycopg.connect(url, autocommit=True)
        setup.execute(SCHEMA)
        sync = psycopg.connect(url, autocommit=True)
        apg = await asyncpg.connect(url)
        limiter = anyio.CapacityLimiter(1)

        async def psycopg_thread(i: int) -> None:
            await anyio.to_thread.run_sync(psycopg_verb, sync, i, limiter=limiter)

        async def psycopg_loop(i: int) -> None:
            psycopg_verb(sync, i)

        async def asyncpg_native(i: int) -> None:
            await asyncpg_native_verb(apg, i)

        async def asyncpg_bridge(i: int) -> None:
            await anyio.to_thread.run_sync(asyncpg_bridged_verb, apg, i, limiter=limiter)

        variants = {
            "psycopg-thread": psycopg_thread,
            "asyncpg-bridge": asyncpg_bridge,
            "asyncpg-native": asyncpg_native,
            "psycopg-loop": psycopg_loop,
        }
        rates: dict[str, list[float]] = {name: [] for name in variants}
        cpus: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, verb in variants.items():
                setup.execute("TRUNCATE bench_deliveries")
                got, cpu = await rate(args.n, verb)
                rates[name].append(got)
                cpus[name].append(cpu)
        print(f"psycopg {psycopg.__version__} (libpq {psycopg.pq.version()}), asyncpg {asyncpg.__version__};"
              f" {args.n} verbs x {args.rounds} rounds, interleaved")  # fmt: skip
        floor = statistics.median(rates["psycopg-loop"])
        for name, got in rates.items():
            med = statistics.median(got)
            print(f"  {name:15} {med:7.0f} verbs/s  ({min(got):.0f}-{max(got):.0f})"
                  f"  {1e6 / med:6.0f} us/verb  {med / floor:4.2f}x psycopg-loop"
                  f"  client CPU {statistics.median(cpus[name]):4.0f} us/verb")  # fmt: skip
        await apg.close()
        sync.close()
        setup.close()
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a PostgreSQL to use (default: start a private cluster)")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    anyio.run(main, parser.parse_args())

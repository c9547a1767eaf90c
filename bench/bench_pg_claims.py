"""Claims/s on PostgreSQL: 1, 4 and 8 `teamroom serve` processes next to a bare SKIP LOCKED loop.

    python bench/bench_pg_claims.py [--url postgresql://...] [--per 60] [--counts 1,4,8] [--rounds 1]

For each count N a fresh schema gets N agents and ``--per`` queued messages for each (per-agent
queues, sent through the store). Then, on the same database and the same rows:
- bare: N psycopg connections, each claiming its agent's next delivery with one
  ``UPDATE ... WHERE id = (SELECT ... ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)``
  and acking it with a second UPDATE, autocommit (what PgQueuer or River would do);
- the deliveries are put back to queued, and N real MCP clients over stdio, one per
  ``teamroom serve --db postgresql://...`` process, each poll(limit=1) + ack until its queue is empty.
A claim is one claim and its ack, both ways. Prints claims/s and the ratio bare/teamroom at each N
(goal: within 2x at 8). The clients all run in this one process, as the bare loop does.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import anyio
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mcp import StdioServerParameters  # noqa: E402
from tests.pg import Cluster, admin, with_schema  # noqa: E402

from bench.common import client  # noqa: E402
from teamroom.store import open_store  # noqa: E402

OPTS = dict(subject=None, kind="text", payload=None, priority=1, thread_id=None, reply_to=None,
            ttl_seconds=None, max_attempts=5, idempotency_key=None)  # fmt: skip
CLAIM = """
UPDATE deliveries SET state = 'leased', attempt = attempt + 1, receipt = 'bare', updated_at = 0,
       visible_at = floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint + 300000
 WHERE id = (SELECT id FROM deliveries WHERE recipient = %s AND state = 'queued'
              ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id"""
ACK = "UPDATE deliveries SET state = 'acked' WHERE id = %s"
RESET = "UPDATE deliveries SET state = 'queued', attempt = 0, receipt = NULL, visible_at = 0"


def serve_params(url: str, agent: str) -> StdioServerParameters:
    script = Path(sys.executable).with_name("teamroom")
    env = {**os.environ, "TEAMROOM_AGENT": agent}
    return StdioServerParameters(command=str(script), args=["serve", "--db", url], env=env)


async def preload(url: str, agents: list[str], per: int) -> None:
    store = open_store(url)
    await store.open()
    try:
        for name in ["sender", *agents]:
            await store.register(name, None, None, None)
        for _ in range(per):
            for agent in agents:
                await store.send("sender", [agent], "work " + "x" * 100, **OPTS)
    finally:
        await store.close()


async def bare(url: str, agents: list[str]) -> tuple[int, float]:
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in agents]
    claimed = 0

    async def loop(conn: psycopg.AsyncConnection, agent: str) -> None:
        nonlocal claimed
        while True:
            row = await (await conn.execute(CLAIM, (agent,))).fetchone()
            if row is None:
                return
            await conn.execute(ACK, (row[0],))
            claimed += 1

    try:
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for conn, agent in zip(conns, agents, strict=True):
                tg.start_soon(loop, conn, agent)
        return claimed, time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()


async def served(url: str, agents: list[str]) -> tuple[int, float]:
    claimed = 0
    ready = anyio.Event()
    started = 0.0
    finished: list[float] = []

    async def worker(agent: str, up: list[int]) -> None:
        nonlocal claimed
        async with client(serve_params(url, agent)) as call:
            await call("register")
            up.append(1)
            if len(up) == len(agents):
                ready.set()
            await ready.wait()
            while True:
                got = (await call("poll", limit=1))["messages"]
                if not got:
                    break
                await call("ack", receipts=[got[0]["receipt"]])
                claimed += 1
            finished.append(time.perf_counter())

    up: list[int] = []

    async def start_clock() -> None:
        nonlocal started
        await ready.wait()
        started = time.perf_counter()

    async with anyio.create_task_group() as tg:
        tg.start_soon(start_clock)
        for agent in agents:
            tg.start_soon(worker, agent, up)
    return claimed, max(finished) - started


async def main(args: argparse.Namespace) -> None:
    cluster = None if args.url else Cluster.start()
    base = args.url or cluster.url
    counts = [int(c) for c in args.counts.split(",")]
    print(f"claims/s (claim + ack), per-agent queues of {args.per}, load {os.getloadavg()[0]:.2f}")
    print(f"  {'N':>3} {'bare SKIP LOCKED':>18} {'teamroom serve':>16} {'bare/teamroom':>14}")
    try:
        for r in range(args.rounds):
            for n in counts:
                schema = f"claims_{r}_{n}"
                with psycopg.connect(base, autocommit=True) if cluster is None else admin(cluster) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                    conn.execute(f"CREATE SCHEMA {schema}")
                url = with_schema(base, schema)
                agents = [f"w{i}" for i in range(n)]
                await preload(url, agents, args.per)
                b_n, b_s = await bare(url, agents)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(RESET)
                t_n, t_s = await served(url, agents)
                assert b_n == t_n == n * args.per, (b_n, t_n)
                b, t = b_n / b_s, t_n / t_s
                print(f"  {n:>3} {b:>14.0f} c/s {t:>12.0f} c/s {b / t:>13.2f}x  (load {os.getloadavg()[0]:.2f})",
                      flush=True)  # fmt: skip
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a PostgreSQL database to use (default: start a private cluster)")
    parser.add_argument("--per", type=int, default=60, help="messages queued for each agent")
    parser.add_argument("--counts", default="1,4,8", help="server counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=1)
    anyio.run(main, parser.parse_args())

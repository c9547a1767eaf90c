"""The chaos workload: senders, competing consumers and a killer, then a drain.

Senders send unique bodies with an idempotency key and retry an unanswered send with the same
key until it is answered (so a send is never lost and never doubled by the retry). Several
consumer tasks poll the same agent's queue through random servers and ack, nack, abandon
(the lease lapses), ack too late, or heartbeat first. A killer SIGKILLs random servers (now and
then all of them) and starts new ones. When time is up the killer stops, consumers ack
everything they get, and the run ends once the store holds no queued or leased delivery.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

import anyio

from .check import Report, check
from .cluster import Cluster
from .history import History
from .locks import lock_claimer

BODY_FLAVOURS = ["plain", "ünïcödé ✓", "emoji 🦀🐍", "tab\tand newline\n", "quote ' \" \\ back"]


@dataclass
class ChaosConfig:
    seconds: float = 15.0
    servers: int = 3
    seed: int = 1
    senders: int = 2
    consumers: dict[str, int] = field(default_factory=lambda: {"q1": 3, "q2": 2})  # queue agent -> tasks
    claimers: int = 3  # lock claimers, one agent each (when the servers have claim_lock)
    lease_seconds: tuple[int, int] = (1, 2)
    kill_every: tuple[float, float] = (0.4, 1.5)
    drain_timeout: float = 60.0


@dataclass
class Run:
    """What every worker shares."""

    config: ChaosConfig
    cluster: Cluster
    rng: Random
    stopping: anyio.Event = field(default_factory=anyio.Event)  # no more sends, kills or chaos
    done: anyio.Event = field(default_factory=anyio.Event)  # everything drained: workers exit

    def sender_names(self) -> list[str]:
        return [f"s{i}" for i in range(self.config.senders)]

    def claimer_names(self) -> list[str]:
        return [f"l{i}" for i in range(self.config.claimers)] if "claim_lock" in self.cluster.tools else []


# --- workers -------------------------------------------------------------------------------


async def sender(run: Run, name: str) -> None:
    rng, call = run.rng, run.cluster.call
    queues = list(run.config.consumers)
    seq = 0
    while not run.stopping.is_set():
        seq += 1
        key = f"{name}-{seq}"
        body = f"chaos {run.config.seed} {key} {rng.choice(BODY_FLAVOURS)}"
        if rng.random() < 0.05:  # big writes span many pages: a kill can land in the middle of one
            body += " " + "x" * rng.randint(8_000, 60_000)
        args = dict(
            agent=name,
            to=rng.choice([*queues, queues]),
            body=body,
            idempotency_key=key,
            max_attempts=rng.randint(1, 4),
            priority=rng.choice(["low", "normal", "high", "urgent"]),
        )
        while (await call(name, "send", **args)).outcome == "info":
            pass  # unanswered: the retry with the same key must neither lose nor double it
        if rng.random() < 0.2:
            await drain_inbox(run, name)
        await anyio.sleep(rng.uniform(0, 0.05))
    while not run.done.is_set():  # dead letters keep producing delivery_failed notices until the end
        await drain_inbox(run, name, wait=0.3)


async def drain_inbox(run: Run, name: str, wait: float = 0) -> None:
    """A sender reads its delivery_failed notices and acks them."""
    op = await run.cluster.call(name, "poll", agent=name, limit=20, lease_seconds=2, wait_seconds=wait)
    if op.outcome == "ok" and op.result["messages"]:
        await acknowledge(run, name, name, [m["receipt"] for m in op.result["messages"]])


async def acknowledge(run: Run, worker: str, agent: str, receipts: list[str]) -> None:
    """Ack, retrying an unanswered ack with the same receipts (acking a receipt twice is a no-op)."""
    while (await run.cluster.call(worker, "ack", agent=agent, receipts=receipts)).outcome == "info":
        pass


async def consumer(run: Run, worker: str, queue: str) -> None:
    rng, call = run.rng, run.cluster.call
    while not run.done.is_set():
        draining = run.stopping.is_set()
        lease = rng.randint(*run.config.lease_seconds)
        op = await call(
            worker,
            "poll",
            agent=queue,
            limit=rng.randint(1, 5),
            lease_seconds=lease,
            wait_seconds=0.5 if draining else 0.2,
        )
        if op.outcome != "ok" or not op.result["messages"]:
            continue
        await anyio.sleep(rng.uniform(0, 0.03))  # the work
        to_ack, late = [], []
        for message in op.result["messages"]:
            roll = 0.0 if draining else rng.random()
            if roll < 0.72:
                to_ack.append(message["receipt"])
            elif roll < 0.82:
                await call(worker, "nack", agent=queue, receipt=message["receipt"], reason="chaos",
                           retry_after_seconds=rng.choice([0, 0, 0.1, 0.3]))  # fmt: skip
            elif roll < 0.90:
                pass  # abandoned: the lease lapses and the delivery comes back with attempt + 1
            elif roll < 0.95:
                late.append(message["receipt"])
            else:
                await call(worker, "heartbeat", agent=queue, status="working")
                to_ack.append(message["receipt"])
        if to_ack:
            await acknowledge(run, worker, queue, to_ack)
        if late:  # past the lease: lease_expired, unless a heartbeat of the same agent renewed it meanwhile
            await anyio.sleep(lease + 0.2)
            await acknowledge(run, worker, queue, late)


async def killer(run: Run, tg) -> None:
    rng, cluster = run.rng, run.cluster
    while True:
        with anyio.move_on_after(rng.uniform(*run.config.kill_every)):
            await run.stopping.wait()
        if run.stopping.is_set():
            return
        live = cluster.live()
        if not live:
            continue
        victims = live if rng.random() < 0.1 else [rng.choice(live)]  # now and then, everything at once
        for node in victims:
            cluster.kill(node)
            tg.start_soon(cluster.start)


# --- the run ---------------------------------------------------------------------------------


def live_deliveries(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'leased')").fetchone()[0]
    finally:
        conn.close()


async def _drain(run: Run, db: Path) -> None:
    started = time.monotonic()
    while time.monotonic() - started < run.config.drain_timeout:
        if await anyio.to_thread.run_sync(live_deliveries, db) == 0:
            run.cluster.history.drained = True
            break
        await anyio.sleep(0.2)
    run.cluster.history.drain_seconds = time.monotonic() - started


async def run_chaos(config: ChaosConfig, workdir: Path | None = None) -> Report:
    """Run the workload against ``config.servers`` servers on a fresh store and check the history."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="teamroom-chaos-"))
    db = workdir / "teamroom.db"
    history = History()
    rng = Random(config.seed)
    async with anyio.create_task_group() as tg:
        cluster = Cluster(db, workdir, history, tg, rng)
        run = Run(config, cluster, rng)
        async with anyio.create_task_group() as starting:  # all at once on a fresh file: concurrent migration
            for _ in range(config.servers):
                starting.start_soon(cluster.start)
        await cluster.list_tools()
        for name in [*config.consumers, *run.sender_names(), *run.claimer_names()]:
            await _setup_call(cluster, name)
        async with anyio.create_task_group() as workers:
            for name in run.sender_names():
                workers.start_soon(sender, run, name)
            for name in run.claimer_names():
                workers.start_soon(lock_claimer, run, name)
            for queue, count in config.consumers.items():
                for i in range(count):
                    workers.start_soon(consumer, run, f"{queue}-consumer-{i}", queue)
            workers.start_soon(killer, run, tg)
            await anyio.sleep(config.seconds)
            run.stopping.set()
            while len(cluster.live()) < config.servers and await cluster.start() is not None:
                pass
            await _drain(run, db)
            run.done.set()
        cluster.stop_all()
    return check(history, db, workdir, senders=run.sender_names())


async def _setup_call(cluster: Cluster, name: str) -> None:
    while (await cluster.call("setup", "register", agent=name, role="chaos")).outcome == "info":
        pass

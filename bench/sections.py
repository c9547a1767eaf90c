"""The sections of bench/run.py, one coroutine each: (report, temp dir, quick) -> rows in the report."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from pathlib import Path

import anyio
from mcp import Client

from bench.common import Report, client, noop_params, summary, teamroom_params, timed
from teamroom.config import Settings
from teamroom.server import build_server
from teamroom.store import SQLiteStore

BODY = "x" * 200
EVENTS_PER_MESSAGE = (("old", "send"), ("bench", "lease"), ("bench", "ack"))
OPTS = dict(
    subject=None, kind="text", payload=None, priority=1, thread_id=None, reply_to=None,
    ttl_seconds=None, max_attempts=5, idempotency_key=None,
)  # fmt: skip


# --- tools/list -----------------------------------------------------------------------------


async def tools(report: Report, tmp: Path, quick: bool) -> None:
    report.header("tools/list as an agent's context sees it: name + description + input schema (characters)")
    async with Client(build_server(Settings(db_path=tmp / "tools.db"))) as c:
        listed = (await c.list_tools()).tools
        instructions = c.instructions or ""
    sizes = {
        t.name: len(t.name) + len(t.description or "") + len(json.dumps(t.input_schema, separators=(",", ":")))
        for t in listed
    }
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        report.add(f"{name}", size, "chars")
    report.add(f"all {len(sizes)} tools (ratio: to the 12,000 target)", sum(sizes.values()), "chars", 12_000)
    report.add("server instructions", len(instructions), "chars")


# --- start ----------------------------------------------------------------------------------


async def start(report: Report, tmp: Path, quick: bool) -> None:
    n = 5 if quick else 15
    report.header(f"server start: spawn + MCP handshake, {n} interleaved runs each (ms)")
    noop_ms, ours_ms = [], []
    for i in range(n):
        for params, out in ((noop_params(), noop_ms), (teamroom_params(tmp / f"start{i}.db", "bench"), ours_ms)):
            t0 = time.perf_counter()
            async with Client(params):
                out.append((time.perf_counter() - t0) * 1000)
    floor, ours = summary(noop_ms), summary(ours_ms)
    report.add("no-op server start p50 (floor)", floor["p50"], "ms", floor["p50"])
    report.add("teamroom serve start p50 (target <= 1.3x)", ours["p50"], "ms", floor["p50"])
    report.add("teamroom serve start p95", ours["p95"], "ms", floor["p95"])


# --- latency of every tool ------------------------------------------------------------------


async def latency(report: Report, tmp: Path, quick: bool) -> None:
    n, rounds = (100, 2) if quick else (200, 3)
    report.header(f"stdio latency of every tool, {rounds} rounds x {n} calls, p50 / p95 (ms), ratio to the no-op p50")
    samples: dict[str, list[float]] = {}

    def keep(name: str, values: list[float]) -> None:
        samples.setdefault(name, []).extend(values)

    async with client(noop_params()) as noop, client(teamroom_params(tmp / "latency.db", "bench")) as call:
        listed = {t.name for t in (await call.client.list_tools()).tools}
        await call("register", role="builder")
        await call("register", agent="peer", role="builder")
        thread_id = (await call("send", to="bench", body=BODY))["thread_id"]
        for _ in range(rounds):
            keep("no-op", await timed(n, lambda: noop("noop", agent="bench")))
            keep("register", await timed(n, lambda: call("register", role="builder")))
            keep("heartbeat", await timed(n, lambda: call("heartbeat", status="working")))
            keep("agents", await timed(n, lambda: call("agents")))
            keep("thread", await timed(n, lambda: call("thread", thread_id=thread_id, limit=20)))
            keep("send", await timed(n, lambda: call("send", to="peer", body=BODY)))
            keep("poll (nothing waiting)", await timed(n, lambda: call("poll")))
            await _steps(call, n, keep)
            if "claim_lock" in listed:
                await _lock_steps(call, n, keep)
            if "post_finding" in listed:
                await _board_steps(call, n, keep)
            if "handoff" in listed:
                await _handoff_steps(call, n, keep)
    floor = summary(samples.pop("no-op"))
    report.add("no-op tool (floor)", floor["p50"], "ms", floor["p50"], p95=floor["p95"])
    for name, values in samples.items():
        s = summary(values)
        target = {"send": " (target <= 1.5x)"}.get(name, "")
        report.add(f"{name}{target}  p95 {s['p95']:.2f}", s["p50"], "ms", floor["p50"], p95=s["p95"])


async def _steps(call, n, keep) -> None:
    """send, poll, ack and nack timed one by one inside real cycles (odd rounds nack once first)."""
    times: dict[str, list[float]] = {"send": [], "poll (one waiting)": [], "ack": [], "nack": []}
    cycle_ms = []

    async def step(name, *args, **kwargs):
        t0 = time.perf_counter()
        out = await call(*args, **kwargs)
        times[name].append((time.perf_counter() - t0) * 1000)
        return out

    for i in range(n):
        c0 = time.perf_counter()
        await step("send", "send", to="bench", body=BODY, max_attempts=100)
        got = (await step("poll (one waiting)", "poll", limit=1))["messages"]
        if i % 2:
            await step("nack", "nack", receipt=got[0]["receipt"])
            got = (await step("poll (one waiting)", "poll", limit=1))["messages"]
        await step("ack", "ack", receipts=[got[0]["receipt"]])
        if not i % 2:
            cycle_ms.append((time.perf_counter() - c0) * 1000)
    times.pop("send")  # measured on its own above, without a queue behind it
    for name, values in times.items():
        keep(name, values)
    keep("send+poll+ack cycle (target <= 4.5x)", cycle_ms)


async def _lock_steps(call, n, keep) -> None:
    claim_ms, release_ms = [], []
    for i in range(n):
        t0 = time.perf_counter()
        await call("claim_lock", resources=[f"src/mod{i % 50}.py"], reason="bench")
        t1 = time.perf_counter()
        await call("release_lock", resources=[f"src/mod{i % 50}.py"])
        t2 = time.perf_counter()
        claim_ms.append((t1 - t0) * 1000)
        release_ms.append((t2 - t1) * 1000)
    keep("claim_lock", claim_ms)
    keep("release_lock", release_ms)
    await call("claim_lock", resources=["docs/**"])
    keep("locks", await timed(n, lambda: call("locks"), warmup=5))
    await call("release_lock")


async def _board_steps(call, n, keep) -> None:
    post_ms, read_ms = [], []
    for i in range(n):
        t0 = time.perf_counter()
        await call("post_finding", scope="bench", title=f"finding {i}", body=BODY, tags=["perf"])
        t1 = time.perf_counter()
        await call("read_board", scope="bench")
        t2 = time.perf_counter()
        post_ms.append((t1 - t0) * 1000)
        read_ms.append((t2 - t1) * 1000)
    keep("post_finding", post_ms)
    keep("read_board (one new entry)", read_ms)


async def _handoff_steps(call, n, keep) -> None:
    handoff_ms, resume_ms = [], []
    for i in range(n):
        t0 = time.perf_counter()
        await call("handoff", task=f"task-{i}", summary="state now", next_step="run the tests")
        t1 = time.perf_counter()
        await call("resume", task=f"task-{i}")
        t2 = time.perf_counter()
        handoff_ms.append((t1 - t0) * 1000)
        resume_ms.append((t2 - t1) * 1000)
    keep("handoff", handoff_ms)
    keep("resume", resume_ms)


# --- cycles across processes ------------------------------------------------------------------


async def cycles(report: Report, tmp: Path, quick: bool) -> None:
    seconds = 2.0 if quick else 5.0
    report.header(f"send+poll+ack cycles/s through MCP, agents in separate server processes, {seconds:.0f} s each")
    for agents in (1, 4, 8):
        floor = await _throughput(agents, seconds, None)
        ours = await _throughput(agents, seconds, tmp / f"cycles{agents}.db")
        report.add(f"{agents} agent(s): no-op 3-call cycles/s (floor)", floor, "cyc/s", floor)
        report.add(f"{agents} agent(s): teamroom cycles/s (ratio: floor / ours)", ours, "cyc/s", None,
                   slowdown=floor / ours)  # fmt: skip
        print(f"    {'':<50} slowdown vs floor: {floor / ours:.2f}x")


async def _throughput(agents: int, seconds: float, db: Path | None) -> float:
    counts = [0] * agents
    go, stop_at = anyio.Event(), [0.0]

    async def agent(i: int) -> None:
        params = noop_params() if db is None else teamroom_params(db, f"agent{i}")
        async with client(params) as call:
            if db is not None:
                await call("register")
            ready.append(i)
            if len(ready) == agents:
                stop_at[0] = time.perf_counter() + seconds
                go.set()
            await go.wait()
            while time.perf_counter() < stop_at[0]:
                if db is None:
                    for _ in range(3):
                        await call("noop", agent="x")
                else:
                    await call("send", to=f"agent{i}", body=BODY)
                    got = (await call("poll", limit=1))["messages"]
                    await call("ack", receipts=[got[0]["receipt"]])
                counts[i] += 1

    ready: list[int] = []
    async with anyio.create_task_group() as tg:
        for i in range(agents):
            tg.start_soon(agent, i)
    return sum(counts) / seconds


# --- store level ----------------------------------------------------------------------------


async def store(report: Report, tmp: Path, quick: bool) -> None:
    windows, seconds = (4, 0.5) if quick else (10, 0.5)
    report.header(f"store-level send+lease+ack cycles/s (no MCP) vs raw sqlite3, same settings, median of {windows}"
                  f" alternating {seconds} s windows")  # fmt: skip
    for durability in ("normal", "full"):
        raw, ours = [], []
        for w in range(windows):
            raw.append(_raw_cycles(tmp / f"raw-{durability}-{w}.db", durability, seconds))
            ours.append(await _store_cycles(tmp / f"store-{durability}-{w}.db", durability, seconds))
        raw_m, ours_m = statistics.median(raw), statistics.median(ours)
        report.add(f"raw sqlite3 insert+claim+ack, {durability} (floor)", raw_m, "cyc/s", raw_m,
                   spread=[min(raw), max(raw)])  # fmt: skip
        report.add(f"SQLiteStore send+lease+ack, {durability}", ours_m, "cyc/s", None, slowdown=raw_m / ours_m,
                   spread=[min(ours), max(ours)])  # fmt: skip
        print(f"    {'':<50} slowdown vs floor: {raw_m / ours_m:.2f}x  (spread {min(ours):.0f}-{max(ours):.0f})")


def _raw_cycles(db: Path, durability: str, seconds: float) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'full' else 'NORMAL'}")
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, queue TEXT, state TEXT, body TEXT, lease INTEGER)")
    conn.execute("CREATE INDEX jobs_ready ON jobs (queue, id) WHERE state = 'queued'")
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO jobs (queue, state, body) VALUES ('q', 'queued', ?)", (BODY,))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        job = conn.execute(
            "UPDATE jobs SET state = 'leased', lease = 1 WHERE id = (SELECT id FROM jobs WHERE queue = 'q'"
            " AND state = 'queued' ORDER BY id LIMIT 1) RETURNING id"
        ).fetchone()[0]
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE jobs SET state = 'acked' WHERE id = ?", (job,))
        conn.execute("COMMIT")
        n += 1
    conn.close()
    return n / seconds


async def _store_cycles(db: Path, durability: str, seconds: float) -> float:
    s = SQLiteStore(db, durability=durability)
    await s.open()
    await s.register("b", None, None, None)
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        await s.send("a", ["b"], BODY, **OPTS)
        got = (await s.lease("b", 1, 300, None, None)).messages
        await s.ack("b", [got[0].receipt])
        n += 1
    await s.close()
    return n / seconds


# --- wake-ups across processes ----------------------------------------------------------------


async def wake(report: Report, tmp: Path, quick: bool) -> None:
    rounds = 10 if quick else 30
    report.header(f"cross-process wake-up, {rounds} rounds: a commit in one process -> the blocked call returns (ms)")
    db = tmp / "wake.db"
    async with client(teamroom_params(db, "waiter")) as waiter, client(teamroom_params(db, "sender")) as sender:
        await waiter("register")
        listed = {t.name for t in (await waiter.client.list_tools()).tools}

        async def ack_all(got):
            await waiter("ack", receipts=[m["receipt"] for m in got["messages"]])

        poll_ms = await _wake_rounds(
            rounds, lambda: waiter("poll", wait_seconds=20), lambda: sender("send", to="waiter", body="wake"), ack_all
        )
        s = summary(poll_ms)
        report.add(f"poll(wait_seconds) wake p50 (target <= 25)  p95 {s['p95']:.2f}", s["p50"], "ms", p95=s["p95"])
        if "claim_lock" in listed:

            async def hold():
                await sender("claim_lock", resources=["src/wake.py"])

            claim_ms = await _wake_rounds(
                rounds,
                lambda: waiter("claim_lock", resources=["src/wake.py"], wait_seconds=20),
                lambda: sender("release_lock", resources=["src/wake.py"]),
                after=lambda got: waiter("release_lock"),
                before=hold,
            )
            s = summary(claim_ms)
            report.add(f"claim_lock(wait_seconds) wake p50  p95 {s['p95']:.2f}", s["p50"], "ms", p95=s["p95"])


async def _wake_rounds(rounds, blocked, trigger, after, before=None) -> list[float]:
    out = []
    for _ in range(rounds):
        if before is not None:
            await before()
        done: dict[str, object] = {}

        async def block(done=done):
            done["result"] = await blocked()
            done["at"] = time.perf_counter()

        async with anyio.create_task_group() as tg:
            tg.start_soon(block)
            await anyio.sleep(0.05)  # let the blocked call reach its wait (a bench may sleep; tests may not)
            await trigger()
            committed = time.perf_counter()
        out.append((done["at"] - committed) * 1000)
        await after(done["result"])
    return out


# --- locks at scale -------------------------------------------------------------------------


async def locks(report: Report, tmp: Path, quick: bool) -> None:
    try:
        from teamroom.tools import locks as lock_tools
    except ImportError:
        print("\n(locks: not in this build)")
        return
    n = 100 if quick else 300
    report.header(f"claim_lock + release through MCP with many live locks held by others, {n} claims (ms)")
    base = None
    for live in (10, 1_000, 10_000):
        db = tmp / f"locks{live}.db"
        s = SQLiteStore(db)
        await s.open()
        for start in range(0, live, 100):
            batch = [f"pkg{i // 10}/mod{i}.py" if i % 10 else f"pkg{i // 10}/gen/**" for i in range(start, start + 100)]
            await lock_tools.claim_lock(s, f"holder{start // 100}", batch[: live - start], ttl_seconds=86_400)
        await s.close()
        async with client(teamroom_params(db, "claimer")) as call:
            ms = []
            for i in range(n + 10):
                t0 = time.perf_counter()
                got = await call("claim_lock", resources=[f"free/file{i}.py"])
                ms.append((time.perf_counter() - t0) * 1000)
                assert got["granted"], got
                await call("release_lock")
        s50 = summary(ms[10:])
        base = base or s50["p50"]
        report.add(f"claim_lock with {live:>6} live locks  p95 {s50['p95']:.2f}", s50["p50"], "ms", base)


# --- big stores -----------------------------------------------------------------------------


async def big(report: Report, tmp: Path, quick: bool) -> None:
    sizes = (0, 1_000, 100_000) if quick else (0, 1_000, 100_000, 1_000_000)
    n = 100 if quick else 300
    report.header(f"poll with many messages already stored (all but one acked), {n} polls each through MCP (ms)")
    base = None
    for stored in sizes:
        db = tmp / f"big{stored}.db"
        await _fill(db, stored)
        size_mb = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6
        async with client(teamroom_params(db, "bench")) as call:
            await call("register")
            ms = []
            for _ in range(n + 10):
                await call("send", to="bench", body=BODY)
                t0 = time.perf_counter()
                got = (await call("poll", limit=1))["messages"]
                ms.append((time.perf_counter() - t0) * 1000)
                await call("ack", receipts=[got[0]["receipt"]])
        s = summary(ms[10:])
        base = base or s["p50"]
        report.add(f"poll with {stored:>9,} stored ({size_mb:,.0f} MB)  p95 {s['p95']:.2f}", s["p50"], "ms", base,
                   size_mb=size_mb)  # fmt: skip


async def _fill(db: Path, count: int) -> None:
    """A store holding ``count`` acked messages with their deliveries and audit events."""
    s = SQLiteStore(db)
    await s.open()
    await s.register("bench", None, None, None)
    await s.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    now = int(time.time() * 1000) - 86_400_000
    for start in range(0, count, 50_000):
        ids = range(start + 1, min(count, start + 50_000) + 1)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO messages (id, sender, recipients, body, kind, priority, thread_id, max_attempts, sent_at)"
            " VALUES (?, 'old', '[\"bench\"]', ?, 'text', 1, 'm' || ?, 5, ?)",
            ((i, BODY, i, now + i) for i in ids),
        )
        conn.executemany(
            "INSERT INTO deliveries (message_id, recipient, state, priority, attempt, max_attempts, visible_at,"
            " updated_at) VALUES (?, 'bench', 'acked', 1, 1, 5, ?, ?)",
            ((i, now + i, now + i) for i in ids),
        )
        conn.executemany(
            "INSERT INTO events (at, agent, kind, subject) VALUES (?, ?, ?, 'm' || ?)",
            ((now + i, who, kind, i) for i in ids for who, kind in EVENTS_PER_MESSAGE),
        )
        conn.execute("COMMIT")
    conn.close()


# --- durability -----------------------------------------------------------------------------


async def durability(report: Report, tmp: Path, quick: bool) -> None:
    n = 100 if quick else 300
    report.header(f"send+poll+ack cycle through MCP by durability, {n} cycles (ms)")
    base = None
    for mode in ("normal", "full"):
        async with client(teamroom_params(tmp / f"dur-{mode}.db", "bench", durability=mode)) as call:
            await call("register")

            async def cycle():
                await call("send", to="bench", body=BODY)
                got = (await call("poll", limit=1))["messages"]
                await call("ack", receipts=[got[0]["receipt"]])

            s = summary(await timed(n, cycle))
        base = base or s["p50"]
        report.add(f"TEAMROOM_DURABILITY={mode}  p95 {s['p95']:.2f}", s["p50"], "ms", base)

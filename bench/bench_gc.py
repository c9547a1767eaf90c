"""Retention's figures (issue 17, SPEC.md §9): store size with gc, gc's time, and a server's calls while gc runs.

    python bench/bench_gc.py [--messages 300000] [--per-day 10000] [--only size,time,serve]

size:  ``--messages`` messages through the store's verbs (send, poll, ack, 100 at a time), in this
       process, with a clock the bench moves: ``--per-day`` messages a day, and after each day gc as a
       server runs it (`Store.gc`, TEAMROOM_RETENTION_DAYS=14). The same messages through a store
       with gc off, side by side, day by day. Prints db + WAL size and the archive's size at each
       tenth of the run: with retention the store stops growing once 14 days are kept.
time:  100,000 finished messages (each with its delivery and 3 audit events, a day old), then the
       wall time of one ``teamroom gc`` process (TEAMROOM_RETENTION_DAYS=0.5) over them, archive
       write and sync included; then the same backlog again through `Store.gc` in this process.
serve: a real ``teamroom serve`` and a real MCP client doing send+poll+ack cycles, in windows that
       alternate: no gc running, then a ``teamroom gc`` process over a backlog of finished messages
       (written old, beforehand). The p50 of the cycles during gc over the p50 of those without.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Report, client, summary, teamroom_params  # noqa: E402
from bench.sections import BODY, EVENTS_PER_MESSAGE  # noqa: E402
from teamroom.store import archive  # noqa: E402
from teamroom.store.base import GC_PAUSE_RATIO, ManualClock  # noqa: E402
from teamroom.store.sqlite.store import SQLiteStore  # noqa: E402

MB = 1e6
DAY_S = 86_400
OPTS = dict(
    subject=None, kind="text", payload=None, priority=1, thread_id=None, reply_to=None,
    ttl_seconds=None, max_attempts=5, idempotency_key=None,
)  # fmt: skip


def db_bytes(db: Path) -> int:
    """The store file and its WAL (and shared-memory index): what it takes on disk."""
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def teamroom_cmd() -> list[str]:
    script = Path(sys.executable).with_name("teamroom")
    return [str(script)] if script.exists() else [sys.executable, "-m", "teamroom"]


# --- size -------------------------------------------------------------------------------------


async def _day(store: SQLiteStore, clock: ManualClock, n: int) -> None:
    """``n`` messages lead -> bot through send, poll (a lease) and ack, spread over one day of the clock."""
    step = DAY_S / n
    for start in range(0, n, 100):
        batch = min(100, n - start)
        for _ in range(batch):
            await store.send("lead", ["bot"], BODY, **OPTS)
            clock.advance(step)
        got = await store.lease("bot", batch, 60, None, None)
        await store.ack("bot", [m.receipt for m in got.messages])


async def size(report: Report, tmp: Path, total: int, per_day: int) -> None:
    report.header(f"store size, {total:,} messages through send+poll+ack at {per_day:,} a day (MB)")
    stores = {}
    for name in ("gc", "nogc"):
        clock = ManualClock()
        store = SQLiteStore(tmp / f"size-{name}.db", clock=clock)
        await store.open()
        for agent in ("lead", "bot"):
            await store.register(agent, None, None, None)
        stores[name] = (store, clock)
    days = -(-total // per_day)
    checkpoints = {max(1, round(days * k / 10)) for k in range(1, 11)}
    started = time.monotonic()
    gc_seconds = 0.0
    print(f"  {'day':>4} {'messages':>10} {'with gc':>9} {'archive':>9} {'gc off':>9} {'kept':>9}  elapsed", flush=True)
    for day in range(1, days + 1):
        n = min(per_day, total - (day - 1) * per_day)
        for name, (store, clock) in stores.items():
            await _day(store, clock, n)
            if name == "gc":
                t0 = time.monotonic()
                await store.gc(14, by="system", pause_ratio=0)  # each day; the pauses' floor (2 ms) still applies
                gc_seconds += time.monotonic() - t0
        if day in checkpoints:
            gc_store, nogc_store = stores["gc"][0], stores["nogc"][0]
            kept = (await gc_store.stats()).messages
            with_gc, without = db_bytes(gc_store.path) / MB, db_bytes(nogc_store.path) / MB
            arch = archive.size(gc_store.archive_dir()) / MB
            done = min(total, day * per_day)
            print(f"  {day:>4} {done:>10,} {with_gc:>9.1f} {arch:>9.1f} {without:>9.1f} {kept:>9,}"
                  f"  {time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
            report.add(f"{done:>9,} through, with gc: db+WAL", with_gc, "MB", without,
                       archive_mb=arch, gc_off_mb=without, kept_messages=kept, day=day)  # fmt: skip
    report.add("gc's share of the run (days' gc wall time)", gc_seconds, "s")
    for store, _ in stores.values():
        await store.close()


# --- time -------------------------------------------------------------------------------------


def fill_finished(db: Path, count: int, first_id: int = 1, age_s: float = DAY_S) -> None:
    """``count`` acked messages with their delivery and 3 audit events each, ``age_s`` old, ids from ``first_id``."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    now = int(time.time() * 1000) - int(age_s * 1000)
    for start in range(first_id, first_id + count, 20_000):
        ids = range(start, min(first_id + count, start + 20_000))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO messages (id, sender, recipients, body, kind, priority, thread_id, max_attempts, sent_at)"
            " VALUES (?, 'lead', '[\"bot\"]', ?, 'text', 1, 'm' || ?, 5, ?)",
            ((i, BODY, i, now) for i in ids),
        )
        conn.executemany(
            "INSERT INTO deliveries (message_id, recipient, state, priority, attempt, max_attempts, visible_at,"
            " updated_at) VALUES (?, 'bot', 'acked', 1, 1, 5, ?, ?)",
            ((i, now, now) for i in ids),
        )
        conn.executemany(
            "INSERT INTO events (at, agent, kind, subject) VALUES (?, ?, ?, 'm' || ?)",
            ((now, who.replace("old", "lead").replace("bench", "bot"), kind, i) for i in ids for who, kind in
             EVENTS_PER_MESSAGE),
        )  # fmt: skip
        conn.execute("COMMIT")
    conn.close()


async def _new_store(db: Path) -> None:
    """A migrated store with nothing in it: the backlog's old events come first in id order, as they would."""
    s = SQLiteStore(db)
    await s.open()
    await s.close()


def run_gc(db: Path, days: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "TEAMROOM_RETENTION_DAYS": days}
    t0 = time.monotonic()
    done = subprocess.run([*teamroom_cmd(), "gc", "--db", str(db), "--json"], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"teamroom gc failed: {done.stderr}")
    return time.monotonic() - t0, done


async def gc_time(report: Report, tmp: Path, count: int) -> None:
    report.header(f"gc over {count:,} finished messages (each with its delivery and 3 events), archive included")
    db = tmp / "time.db"
    await _new_store(db)
    fill_finished(db, count)
    before = db_bytes(db)
    seconds, done = run_gc(db, "0.5")
    assert f'"events": {3 * count}' in done.stdout, done.stdout
    report.add(f"`teamroom gc` process wall time per {count:,}", seconds, "s", per_100k=seconds * 100_000 / count,
               gc=done.stdout.strip(), db_mb_before=before / MB)  # fmt: skip
    db = tmp / "time-verb.db"  # a store of its own: gc's "gc" event, written now, would end the walk of events
    await _new_store(db)
    fill_finished(db, count)
    store = SQLiteStore(db)
    await store.open()
    try:
        t0 = time.monotonic()
        result = await store.gc(0.5, by="human", pause_ratio=3.0)
        verb = time.monotonic() - t0
    finally:
        await store.close()
    assert result.messages == count, result
    report.add(f"Store.gc (the CLI's pacing, 3x) per {count:,}", verb, "s", per_100k=verb * 100_000 / count)
    assert result.events == 3 * count, result
    report.add(f"archive for {count:,} messages' events", archive.size(db.with_name(db.name + ".archive")) / MB, "MB")


# --- serve ------------------------------------------------------------------------------------


async def serve(report: Report, tmp: Path, backlog: int, rounds: int, per_window: int) -> None:
    report.header(f"send+poll+ack through `teamroom serve`, {rounds} rounds: a window without gc, then"
                  f" one during `teamroom gc` over {backlog:,} finished messages (ms)")  # fmt: skip
    db = tmp / "serve.db"
    await _new_store(db)
    off: list[float] = []
    on: list[float] = []
    rows = []
    async with client(teamroom_params(db, "bot")) as call:
        await call("register")

        async def cycle() -> float:
            t0 = time.perf_counter()
            await call("send", to="bot", body=BODY)
            got = (await call("poll", limit=1))["messages"]
            await call("ack", receipts=[got[0]["receipt"]])
            return (time.perf_counter() - t0) * 1000

        for _ in range(20):
            await cycle()
        for r in range(rounds):
            # Old finished messages with ids above the server's so far: gc walks ids in order and all of
            # them, the server's own acked cycles too, are older than the retention (~10 s) by gc's time.
            with sqlite3.connect(db) as conn:
                next_id = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM messages").fetchone()[0]
            fill_finished(db, backlog, first_id=next_id, age_s=DAY_S)
            await anyio.sleep(12)  # the server's own cycles so far pass the retention too
            window_off = [await cycle() for _ in range(per_window)]
            env = {**os.environ, "TEAMROOM_RETENTION_DAYS": "0.0001"}  # 8.6 s
            process = await anyio.open_process([*teamroom_cmd(), "gc", "--db", str(db), "--json"], env=env)
            window_on, t0 = [], time.monotonic()
            while process.returncode is None:
                window_on.append(await cycle())
            gc_s = time.monotonic() - t0
            await process.wait()
            await process.aclose()
            window_on = window_on[:-1] or window_on  # the last cycle may have outlived the gc
            off += window_off
            on += window_on
            a, b = statistics.median(window_off), statistics.median(window_on)
            rows.append((a, b, len(window_on), gc_s))
            print(f"  round {r + 1}: without gc p50 {a:.2f} ms, during gc p50 {b:.2f} ms ({len(window_on)} cycles"
                  f" in {gc_s:.1f} s of gc) {b / a:.2f}x", flush=True)  # fmt: skip
    s_off, s_on = summary(off), summary(on)
    report.add("cycle p50 without gc (floor)", s_off["p50"], "ms", s_off["p50"], n=s_off["n"])
    report.add("cycle p50 during `teamroom gc` (target <= 1.2x)", s_on["p50"], "ms", s_off["p50"], n=s_on["n"],
               rounds=[list(r) for r in rows])  # fmt: skip
    report.add("cycle p95 without gc", s_off["p95"], "ms")
    report.add("cycle p95 during `teamroom gc`", s_on["p95"], "ms", s_off["p95"])


async def main(args: argparse.Namespace) -> None:
    only = [s.strip() for s in args.only.split(",")]
    report = Report("gc")
    load = os.getloadavg()
    print(f"teamroom bench_gc, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores,"
          f" load {load[0]:.2f} {load[1]:.2f}, sqlite {sqlite3.sqlite_version}; gc {GC_PAUSE_RATIO}x")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="teamroom-bench-gc-") as tmp:
        if "size" in only:
            await size(report, Path(tmp), args.messages, args.per_day)
        if "time" in only:
            await gc_time(report, Path(tmp), args.finished)
        if "serve" in only:
            await serve(report, Path(tmp), args.backlog, args.rounds, args.window)
    report.rows.append({"what": "load average at the end", "value": list(os.getloadavg())})
    print(f"\nload at the end {os.getloadavg()[0]:.2f}; written: {report.save()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="size,time,serve", help="comma-separated: size, time, serve")
    parser.add_argument("--messages", type=int, default=300_000, help="size: messages through the store")
    parser.add_argument("--per-day", type=int, default=10_000, help="size: messages a day of the bench's clock")
    parser.add_argument("--finished", type=int, default=100_000, help="time: finished messages gc goes through")
    parser.add_argument("--backlog", type=int, default=30_000, help="serve: finished messages a round's gc trims")
    parser.add_argument("--rounds", type=int, default=3, help="serve: rounds of (no gc, gc)")
    parser.add_argument("--window", type=int, default=60, help="serve: cycles in a window without gc")
    anyio.run(main, parser.parse_args())

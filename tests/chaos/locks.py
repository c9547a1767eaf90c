"""Lock claimers for the chaos run, and the checks of SPEC §6's lock promises.

Claimers (one agent each) claim random overlapping paths, globs and names, exclusive or shared,
with short TTLs; hold them a moment, sometimes heartbeat, sometimes let them expire (so that the
next claimer takes them over), and release them. Two independent checks:

- real time, from the callers' history alone (as Jepsen checks a lock service): a claim that was
  granted while another holder's conflicting lock was surely held (from the moment its claim
  returned until its release was sent, and never past its TTL from when the claim was sent) is
  a violation; a grant after another one returned must carry a greater token;
- the audit log, replayed from scratch: no grant while a conflicting lock was live, tokens that
  only grow, renewals, releases and takeovers of locks that exist, and a final state equal to the
  store's ``locks`` table.

Used by workload.py only when the servers have ``claim_lock``.
"""

from __future__ import annotations

import json
import sqlite3
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from .history import History, Op

if TYPE_CHECKING:
    from .check import Report
    from .workload import Run

# src/app.py, src/** and src/*.py overlap one another; docs/guide.md and deploy:prod stand alone.
RESOURCES = ["src/app.py", "src/**", "src/*.py", "docs/guide.md", "deploy:prod"]
MARGIN_S = 0.05  # harness and servers read different clocks; a sure hold is shortened by this much


# --- the worker ----------------------------------------------------------------------------------


async def lock_claimer(run: Run, name: str) -> None:
    rng, call = run.rng, run.cluster.call
    while not run.stopping.is_set():
        resources = rng.sample(RESOURCES, rng.randint(1, 2))
        ttl = rng.randint(1, 3)
        op = await call(
            name, "claim_lock", agent=name, resources=resources, mode="shared" if rng.random() < 0.25 else "exclusive",
            ttl_seconds=ttl, reason="chaos", wait_seconds=rng.choice([0, 0, 0.5]),
        )  # fmt: skip
        if op.outcome == "ok" and not op.result["granted"]:
            await anyio.sleep(rng.uniform(0, 0.05))
            continue
        if op.outcome == "ok":
            roll = rng.random()
            if roll < 0.1:  # let it lapse: the next claimer takes it over
                await anyio.sleep(ttl + 0.2)
                continue
            await anyio.sleep(rng.uniform(0, 0.3))
            if roll < 0.2:
                await call(name, "heartbeat", agent=name, status="working")
        # Granted, or unanswered (it may have been granted): release what this claim asked for.
        while (await call(name, "release_lock", agent=name, resources=resources)).outcome == "info":
            pass
    while (await run.cluster.call(name, "release_lock", agent=name)).outcome == "info":
        pass


# --- real time, from the history ---------------------------------------------------------------


@dataclass
class Hold:
    op: Op
    holder: str
    resource: str
    mode: str
    token: int
    sure_until: float  # harness time until which the lock was surely held


def _conflict(a: str, b: str, mode_a: str, mode_b: str) -> bool:
    from teamroom.paths import overlaps

    return "exclusive" in (mode_a, mode_b) and overlaps(a, b)


def real_time(history: History, report: Report) -> None:
    """Grants that overlapped a surely-held conflicting lock; tokens that did not grow."""
    by_worker: dict[str, list[Op]] = {}
    for op in history.ops:
        by_worker.setdefault(op.worker, []).append(op)
    holds: list[Hold] = []
    for ops in by_worker.values():
        for i, op in enumerate(ops):
            if op.tool != "claim_lock" or op.outcome != "ok" or not op.result["granted"]:
                continue
            release = next((o for o in ops[i + 1 :] if o.tool in ("release_lock", "claim_lock")), None)
            until = op.invoked + op.args["ttl_seconds"] - MARGIN_S
            if release is not None:
                until = min(until, release.invoked)
            for lock in op.result["locks"]:
                holds.append(Hold(op, op.args["agent"], lock["resource"], lock["mode"], lock["token"], until))
    by_start = sorted(holds, key=lambda h: h.op.invoked)
    starts = [h.op.invoked for h in by_start]
    for a in holds:  # every b whose whole claim call fell inside a's sure hold
        for b in by_start[bisect_left(starts, a.op.completed) : bisect_right(starts, a.sure_until)]:
            if (
                b.holder != a.holder
                and b.op.completed <= a.sure_until
                and _conflict(a.resource, b.resource, a.mode, b.mode)
            ):
                report.bad(
                    f"{b.holder} was granted {b.resource} ({b.mode}, token {b.token}) while {a.holder} surely held"
                    f" {a.resource} ({a.mode}, token {a.token})"
                )
    fresh = [h for h in holds if not any(lock.get("renewed") for lock in h.op.result["locks"])]
    done = sorted(fresh, key=lambda h: h.op.completed)
    highest, i = (0, ""), 0
    for b in sorted(fresh, key=lambda h: h.op.invoked):  # grants that returned before b was asked for
        while i < len(done) and done[i].op.completed < b.op.invoked:
            highest = max(highest, (done[i].token, done[i].holder))
            i += 1
        if b.token <= highest[0]:
            report.bad(f"token {b.token} ({b.holder}) was granted after token {highest[0]} ({highest[1]}) returned")


# --- the audit log -------------------------------------------------------------------------------


@dataclass
class Lock:
    mode: str
    token: int
    end: int  # ms
    ttl_ms: int


def replay(conn: sqlite3.Connection, report: Report) -> Counter[str]:
    """Rebuild the locks table from the events, checking each step; the kinds of lock events seen."""
    locks: dict[tuple[str, str], Lock] = {}
    kinds: Counter[str] = Counter()
    top = 0
    for event in conn.execute(
        "SELECT id, at, agent, kind, subject, data FROM events WHERE kind LIKE 'lock%' ORDER BY id"
    ):
        kind, at, agent, resource = event["kind"], event["at"], event["agent"], event["subject"]
        data = json.loads(event["data"]) if event["data"] else {}
        kinds[kind] += 1
        where = f"event {event['id']} ({kind} {resource} by {agent})"
        if kind == "lock_claim":
            locks.pop((agent, resource), None)
            for (holder, other), lock in locks.items():
                if holder != agent and lock.end > at and _conflict(other, resource, lock.mode, data["mode"]):
                    report.bad(
                        f"{where}: granted while {holder} held {other} ({lock.mode}) for {lock.end - at} ms more"
                    )
            if data["token"] <= top:
                report.bad(f"{where}: token {data['token']} after {top}: tokens must only grow")
            top = max(top, data["token"])
            locks[agent, resource] = Lock(
                data["mode"], data["token"], at + data["ttl_seconds"] * 1000, data["ttl_seconds"] * 1000
            )
        elif kind == "lock_renew":
            lock = locks.get((agent, resource))
            if lock is None or lock.end <= at or lock.token != data["token"]:
                report.bad(f"{where}: renewed a lock that is not live")
                continue
            lock.ttl_ms = data["ttl_seconds"] * 1000
            lock.end = at + lock.ttl_ms
        elif kind == "locks_renewed":
            live = [lock for (holder, _), lock in locks.items() if holder == agent and lock.end > at]
            for lock in live:
                lock.end = at + lock.ttl_ms
            if len(live) != data["count"]:
                report.bad(f"{where}: renewed {data['count']} locks, the log knows {len(live)} live ones")
        elif kind in ("lock_release", "lock_takeover", "lock_expired"):
            holder = {"lock_release": agent}.get(kind) or data.get("previous_holder") or data.get("holder")
            token = data.get("token", data.get("previous_token"))
            lock = locks.pop((holder, resource), None)
            if lock is None or lock.token != token:
                report.bad(f"{where}: no lock of {holder} with token {token}")
            elif kind != "lock_release" and lock.end > at:
                report.bad(f"{where}: {kind} of a lock live for {lock.end - at} ms more")
        elif kind == "lock_transfer":
            lock = locks.pop((data["from_holder"], resource), None)
            if lock is None:
                report.bad(f"{where}: transferred a lock {data['from_holder']} does not hold")
            else:
                if "previous_token" in data:  # fenced on the way (resume): a new, greater token
                    if data["previous_token"] != lock.token or data["token"] <= top:
                        report.bad(f"{where}: refenced from token {lock.token} to {data['token']} after {top}")
                    lock.token = top = data["token"]
                locks[data["to_holder"], resource] = lock
    stored = {
        (r["holder"], r["resource"]): (r["mode"], r["token"], r["expires_at"])
        for r in conn.execute("SELECT holder, resource, mode, token, expires_at FROM locks")
    }
    replayed = {key: (lock.mode, lock.token, lock.end) for key, lock in locks.items()}
    for key in stored.keys() | replayed.keys():
        if stored.get(key) != replayed.get(key):
            report.bad(f"lock {key}: the log says {replayed.get(key)}, the store {stored.get(key)}")
    fence = conn.execute("SELECT token FROM fence").fetchone()[0]
    if fence != top:
        report.bad(f"the fence says {fence}, the log's last token is {top}")
    return kinds


def check(history: History, conn: sqlite3.Connection, report: Report) -> None:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'locks'").fetchone() is None:
        return
    real_time(history, report)
    kinds = replay(conn, report)
    claims = [op for op in history.ops if op.tool == "claim_lock"]
    granted = [op for op in claims if op.outcome == "ok" and op.result["granted"]]
    report.counts.update(
        {
            "lock claims": len(claims),
            "locks granted": len(granted),
            "claims refused (held)": sum(1 for op in claims if op.outcome == "ok" and not op.result["granted"]),
            "lock takeovers": kinds["lock_takeover"],
            "lock releases": kinds["lock_release"],
            "highest token": max((lock["token"] for op in granted for lock in op.result["locks"]), default=0),
        }
    )

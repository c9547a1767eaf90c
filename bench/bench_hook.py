"""Wall time of ``teamroom hook claude`` (a process per prompt) next to ``python -c pass`` started the same way.

    python bench/bench_hook.py [--n 30]

A demo store in a fresh git repository (the store found the default way, through
``git rev-parse``): three agents, unread messages, a leased one, and a lock and board entries when
this build has them, held open by one connection as the agents' servers hold it. Each run is a new
process fed the hook's JSON on stdin, as Claude Code does.
Bytecode is written on the warm-up run (an installed package ships it; PYTHONDONTWRITEBYTECODE
would recompile teamroom on every run), so the figures are what an installed teamroom costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Report, summary  # noqa: E402
from teamroom.store import SQLiteStore  # noqa: E402
from teamroom.tools import agents as agent_tools  # noqa: E402
from teamroom.tools import messages as message_tools  # noqa: E402


async def demo_store(db: Path) -> None:
    store = SQLiteStore(db)
    await store.open()
    try:
        for name, role in (("lead", "lead"), ("builder-1", "builder"), ("builder-2", "builder")):
            await agent_tools.register(store, name, role=role)
        for i, priority in enumerate(("high", "normal", "low", "normal", "urgent")):
            await message_tools.send(store, "lead", "builder-1", f"task {i}", f"task {i}", priority=priority)
        await message_tools.send(store, "builder-2", "builder-1", "can you review?", "review", kind="question")
        await message_tools.poll(store, "builder-1", limit=1)  # one leased, unacked: what Stop looks at
        try:
            from teamroom.tools import locks

            await locks.claim_lock(store, "builder-1", ["src/auth/**"], ttl_seconds=60, reason="fixing login")
        except ImportError:
            pass
        try:
            from teamroom.tools import board

            await board.post_finding(store, "lead", "The login loop comes from the cookie path", title="cookie path")
        except ImportError:
            pass
    finally:
        await store.close()


def run(command: list[str], stdin: bytes, env: dict[str, str], cwd: Path) -> tuple[float, float, bytes]:
    """Wall ms, CPU ms (user + system of the child and its children, e.g. git) and stdout of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, input=stdin, env=env, cwd=cwd, capture_output=True, check=True)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu, done.stdout


def timed(n: int, command: list[str], stdin: bytes, env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Wall p50/p95 and CPU p50; CPU time says what the hook costs when a shared machine's load blurs wall time."""
    run(command, stdin, env, cwd)  # warm-up: writes bytecode, warms the page cache
    runs = [run(command, stdin, env, cwd) for _ in range(n)]
    return {**summary([wall for wall, _, _ in runs]), "cpu": statistics.median(cpu for _, cpu, _ in runs)}


def main(n: int, keep: bool) -> None:
    script = Path(sys.executable).with_name("teamroom")
    hook = [str(script), "hook", "claude"] if script.exists() else [sys.executable, "-m", "teamroom", "hook", "claude"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "TEAMROOM_DB", "TEAMROOM_AGENT")}
    repo = Path(tempfile.mkdtemp(prefix="teamroom-hook-bench-"))
    db = repo / ".git" / "teamroom.db"
    try:
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        anyio.run(demo_store, db)

        def stdin(event: str, session: str) -> bytes:
            return json.dumps({"hook_event_name": event, "session_id": session, "cwd": str(repo)}).encode()

        # The agents' servers hold the store open, as they do in use: otherwise each hook process would be the
        # last connection to close and pay for a WAL checkpoint and its fsyncs.
        servers = sqlite3.connect(db)
        servers.execute("SELECT COUNT(*) FROM agents").fetchone()
        agent_env = {**env, "TEAMROOM_AGENT": "builder-1"}
        _, _, first = run(hook, stdin("SessionStart", "shown"), agent_env, repo)
        print("SessionStart output:\n" + json.loads(first)["hookSpecificOutput"]["additionalContext"])

        report = Report("hook")
        report.header(f"wall time of one process, {n} runs each (ms)")
        floor = timed(n, [sys.executable, "-c", "pass"], b"", env, repo)
        report.add("python -c pass (floor) p50", floor["p50"], "ms", floor["p50"])
        report.add("python -c pass (floor) CPU p50", floor["cpu"], "ms", floor["cpu"])
        cases = {
            "hook SessionStart (prints everything)": (stdin("SessionStart", "fresh"), agent_env),
            "hook UserPromptSubmit, nothing new": (stdin("UserPromptSubmit", "shown"), agent_env),
            "hook Stop (blocked once, then silent)": (stdin("Stop", "shown"), agent_env),
        }
        for what, (data, case_env) in cases.items():
            figures = timed(n, hook, data, case_env, repo)
            report.add(f"{what} p50", figures["p50"], "ms", floor["p50"], p95=figures["p95"])
            report.add(f"{what} CPU p50", figures["cpu"], "ms", floor["cpu"])
        servers.close()
        print(f"\nwritten: {report.save()}")
    finally:
        if keep:
            print(f"demo store kept: {db} (teamroom status --db {db})")
        else:
            shutil.rmtree(repo)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the demo store and print where it is")
    args = parser.parse_args()
    main(args.n, args.keep)

"""``teamroom demo``: a lead and two workers as real ``teamroom serve`` processes on a temp store.

This is an MCP *client* (like Claude Code or Codex would be), so it imports the SDK's client; the
server side still imports mcp only in server.py.
"""

from __future__ import annotations

import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

# One job per builder, each sent to it by name: a dispatch is one worker's job, never two.
JOBS = {
    "builder-1": ("Validate emails in POST /users", "src/api/users.py: reject bad emails; add tests."),
    "builder-2": ("Rate-limit POST /login", "src/api/login.py: 5 attempts a minute per address; add tests."),
}


class Agent:
    """One agent: its own `teamroom serve` process and MCP session, printing what it does."""

    def __init__(self, name: str, client: Client, started: float) -> None:
        self.name, self.client, self.started = name, client, started

    async def __call__(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        if result.is_error:
            raise RuntimeError(f"{self.name} {tool}: {result.content[0].text}")
        return result.structured_content or {}

    def say(self, what: str) -> None:
        print(f"  {time.monotonic() - self.started:6.3f}s  {self.name:<10} {what}", flush=True)


def _params(db: Path, agent: str) -> StdioServerParameters:
    script = Path(sys.executable).with_name("teamroom")
    command, args = (str(script), ["serve"]) if script.exists() else (sys.executable, ["-m", "teamroom", "serve"])
    return StdioServerParameters(command=command, args=[*args, "--db", str(db)], env={"TEAMROOM_AGENT": agent})


async def _worker(me: Agent, flaky: bool) -> None:
    """Take this builder's dispatch, handle it (the flaky one gives its first attempt back), report the result."""
    while True:
        batch = (await me("poll", wait_seconds=10, lease_seconds=60, kinds=["dispatch"]))["messages"]
        if not batch:
            continue
        job = batch[0]
        me.say(f"poll      {job['message_id']} '{job['subject']}' attempt {job['attempt']}")
        if flaky and job["attempt"] == 1:
            out = await me("nack", receipt=job["receipt"], reason="test database was not up yet")
            me.say(f"nack      {job['message_id']} (test database was not up yet) -> {out['state']}")
            continue
        await me("heartbeat", status="working", task=job["subject"])
        await me("ack", receipts=[job["receipt"]])
        me.say(f"ack       {job['message_id']}")
        tests = 14 if flaky else 9
        sent = await me(
            "send", reply_to=job["message_id"], kind="result", body=f"{job['subject']}: done, {tests} tests pass",
            payload={"tests": tests, "attempt": job["attempt"]},
        )  # fmt: skip
        me.say(f"send      result {sent['message_id']} -> {', '.join(sent['recipients'])}")
        await me("heartbeat", status="done")
        return


async def _demo(db: Path) -> None:
    started = time.monotonic()
    print(f"teamroom demo: a lead and two builders, each its own `teamroom serve` process, sharing {db}")
    print("starting the servers (an MCP client such as Claude Code or Codex starts one per agent):", flush=True)
    async with AsyncExitStack() as stack:
        team = []
        for name in ("lead", *JOBS):
            print(f"  {name:<10} starting ...", end="", flush=True)
            client = await stack.enter_async_context(Client(_params(db, name)))
            print(f" ready ({time.monotonic() - started:.1f}s)", flush=True)
            team.append(Agent(name, client, started))
        print()
        lead, w1, w2 = team
        for me, role in ((lead, "lead"), (w1, "builder"), (w2, "builder")):
            await me("register", role=role, capabilities=["python"])
            me.say(f"register  role={role}")
        threads = await _exchange(lead, w1, w2)
        for thread_id in threads:
            thread = await lead("thread", thread_id=thread_id)
            print(f"\nthread {thread['thread_id']}:")
            for m in thread["messages"]:
                where = ", ".join(f"{d['to']} {d['state']} (attempt {d['attempt']})" for d in m["deliveries"])
                print(f"  {m['message_id']:<4} {m['from']:<10} {m['kind']:<9} -> {where}")
        agents = (await lead("agents"))["agents"]
        print("\nagents: " + ", ".join(f"{a['name']} {a['liveness']}/{a['status'] or '-'}" for a in agents))
    elapsed = time.monotonic() - started
    print(f"\ndone in {elapsed:.2f}s: every delivery acked once; the nacked one came back as attempt 2.")


async def _exchange(lead: Agent, w1: Agent, w2: Agent) -> list[str]:
    """The lead dispatches one job to each builder by name and collects both results; the threads, in order."""
    threads = []
    async with anyio.create_task_group() as tg:
        for worker, (subject, body) in JOBS.items():
            sent = await lead("send", to=worker, kind="dispatch", subject=subject, body=body)
            lead.say(f"send      dispatch {sent['message_id']} '{subject}' -> {worker}")
            threads.append(sent["thread_id"])
        tg.start_soon(_worker, w1, True)  # after the sends, so the story prints in the order it happens
        tg.start_soon(_worker, w2, False)
        results: list[dict[str, Any]] = []
        receipts: list[str] = []
        while len(results) < len(JOBS):
            # poll(ack=...) acks the results already read and leases the next in one call
            batch = (await lead("poll", wait_seconds=10, kinds=["result"], ack=receipts))["messages"]
            for m in batch:
                lead.say(f"poll      result from {m['from']}: {m['body']}")
            receipts = [m["receipt"] for m in batch]
            results.extend(batch)
        await lead("ack", receipts=receipts)
        lead.say(f"ack       {len(results)} results")
    return threads


def run_demo(db: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix="teamroom-demo-") as tmp:
        anyio.run(_demo, Path(db) if db else Path(tmp) / "teamroom.db")
    return 0

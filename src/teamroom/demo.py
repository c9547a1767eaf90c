"""``teamroom demo``: a lead and two workers as real ``teamroom serve`` processes on a temp store.

This is an MCP *client* (like Claude Code or Codex would be), so it imports the SDK's client; the
server side still imports mcp only in server.py.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

TASK = "Add input validation to POST /users (src/api/users.py)"


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


async def _worker(me: Agent, flaky: bool, done: anyio.Event) -> None:
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
        sent = await me(
            "send", reply_to=job["message_id"], kind="result", body=f"{me.name}: validation added, 14 tests pass",
            payload={"tests": 14, "attempt": job["attempt"]},
        )  # fmt: skip
        me.say(f"send      result {sent['message_id']} -> {', '.join(sent['recipients'])}")
        await me("heartbeat", status="done")
        done.set()
        return


async def _demo(db: Path) -> None:
    started = time.monotonic()
    print(f"teamroom demo: 3 real `teamroom serve` processes sharing {db}\n")
    async with (
        Client(_params(db, "lead")) as c0,
        Client(_params(db, "builder-1")) as c1,
        Client(_params(db, "builder-2")) as c2,
    ):
        lead, w1, w2 = Agent("lead", c0, started), Agent("builder-1", c1, started), Agent("builder-2", c2, started)
        for me, role in ((lead, "lead"), (w1, "builder"), (w2, "builder")):
            await me("register", role=role, capabilities=["python"])
            me.say(f"register  role={role}")
        done1, done2 = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_worker, w1, True, done1)
            tg.start_soon(_worker, w2, False, done2)
            sent = await lead(
                "send", to="@builders", kind="dispatch", subject=TASK, body="Reject bad emails; add tests."
            )
            lead.say(f"send      dispatch {sent['message_id']} to @builders -> {', '.join(sent['recipients'])}")
            results: list[dict[str, Any]] = []
            while len(results) < 2:
                batch = (await lead("poll", wait_seconds=10, kinds=["result"]))["messages"]
                for m in batch:
                    lead.say(f"poll      result from {m['from']}: {m['body']}")
                if batch:
                    await lead("ack", receipts=[m["receipt"] for m in batch])
                    results.extend(batch)
            lead.say(f"ack       {len(results)} results")
        thread = await lead("thread", thread_id=sent["thread_id"])
        print(f"\nthread {thread['thread_id']}:")
        for m in thread["messages"]:
            where = ", ".join(f"{d['to']} {d['state']} (attempt {d['attempt']})" for d in m["deliveries"])
            print(f"  {m['message_id']:<4} {m['from']:<10} {m['kind']:<9} -> {where}")
        agents = (await lead("agents"))["agents"]
        print("\nagents: " + ", ".join(f"{a['name']} {a['liveness']}/{a['status'] or '-'}" for a in agents))
    elapsed = time.monotonic() - started
    print(f"\ndone in {elapsed:.2f}s: every delivery acked once; the nacked one came back as attempt 2.")


def run_demo(db: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix="teamroom-demo-") as tmp:
        anyio.run(_demo, Path(db) if db else Path(tmp) / "teamroom.db")
    return 0

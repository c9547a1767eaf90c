"""The board user story (Codex tracker #21027), scripted through real ``teamroom serve`` processes.

A lead opens a workflow scope and spawns ``audit``, ``impl`` and ``mcp`` agents in parallel. They
publish findings to the scope, read each other's findings while they work, ask each other and the
lead questions, and report done; the lead turns findings into decisions and consolidates. Every
agent has its own server process on one store, as in real life. Prints the tool calls each agent made
(every call is a turn of the agent's time):

    python examples/workflow_story.py [--db PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

SCOPE = "auth-review"
WAIT = 30  # seconds a poll may block; a healthy run never waits that long


@dataclass
class Agent:
    """One agent's connection to its own server, counting every tool call it makes."""

    name: str
    client: Client
    calls: list[str] = field(default_factory=list)

    async def __call__(self, tool: str, **arguments: Any) -> dict[str, Any]:
        self.calls.append(tool)
        result = await self.client.call_tool(tool, {"agent": self.name, **arguments})
        if result.is_error:
            raise RuntimeError(f"{self.name} {tool}: {result.content[0].text}")
        return result.structured_content or {}

    async def wait_for(self, kind: str) -> dict[str, Any]:
        """Poll until one message of ``kind`` arrives, ack it, return it."""
        while True:
            messages = (await self("poll", wait_seconds=WAIT, kinds=[kind], limit=1))["messages"]
            if messages:
                await self("ack", receipts=[messages[0]["receipt"]])
                return messages[0]


@asynccontextmanager
async def spawned(db: Path, name: str) -> AsyncIterator[Agent]:
    script = Path(sys.executable).with_name("teamroom")
    command, args = (str(script), ["serve"]) if script.exists() else (sys.executable, ["-m", "teamroom", "serve"])
    params = StdioServerParameters(command=command, args=[*args, "--db", str(db)])
    async with Client(params) as client:
        yield Agent(name, client)


@dataclass
class Story:
    calls: dict[str, list[str]]
    first_reads: dict[str, list[str]]  # what each worker saw on its first read_board
    final: dict[str, Any]  # the lead's last read: decisions and every finding


async def audit(me: Agent, team_up) -> list[str]:
    await me("register", role="auditor")
    await team_up()
    seen = (await me("read_board", scope=SCOPE))["entries"]
    a1 = await me(
        "post_finding", scope=SCOPE, title="refresh() accepts expired tokens", tags=["security"],
        refs=["src/auth/refresh.py"], body="refresh() never checks exp, so a stolen token lives for ever.",
    )  # fmt: skip
    a2 = await me(
        "post_finding", scope=SCOPE, title="Session cookie lacks SameSite", tags=["security"],
        refs=["src/auth/session.py"], body="set_cookie() in session.py sets no SameSite attribute.",
    )  # fmt: skip
    await me(
        "send", to="impl", kind="question", payload={"entry": a1["id"]},
        body=f"{a1['id']} is in refresh.py, which you are changing: will your fix cover it?",
    )  # fmt: skip
    await me.wait_for("answer")
    await me(
        "post_finding", scope=SCOPE, supersedes=a2["id"], tags=["security"], refs=["src/auth/session.py"],
        body="Only the legacy login path sets the cookie without SameSite; the new path sets Strict.",
    )  # fmt: skip
    await me("read_board", scope=SCOPE)
    await me("send", to="lead", kind="worker_done", body=f"audit done: {a1['id']}, {a2['id']} (revised)")
    return [e["body"] for e in seen]


async def impl(me: Agent, team_up) -> list[str]:
    await me("register", role="implementer")
    await team_up()
    seen = (await me("read_board", scope=SCOPE))["entries"]
    await me("post_finding", scope=SCOPE, kind="intent", refs=["src/auth/refresh.py"], body="Changing refresh()")
    question = await me.wait_for("question")
    await me(
        "send", reply_to=question["message_id"], kind="answer",
        body="Yes: the expiry check goes into refresh() on branch impl/refresh.",
    )  # fmt: skip
    await me(
        "post_finding", scope=SCOPE, title="refresh() rejects expired tokens", tags=["fix"],
        refs=["src/auth/refresh.py", question["payload"]["entry"]],
        body="Expiry check and a test on branch impl/refresh.",
    )  # fmt: skip
    await me("read_board", scope=SCOPE)
    await me("send", to="lead", kind="worker_done", body="impl done: refresh fix on impl/refresh")
    return [e["body"] for e in seen]


async def mcp(me: Agent, team_up) -> list[str]:
    await me("register", role="mcp")
    await team_up()
    seen = (await me("read_board", scope=SCOPE))["entries"]
    m1 = await me(
        "post_finding", scope=SCOPE, title="tools/list is over budget", tags=["mcp"],
        refs=["src/teamroom/server.py"], body="All tools together are 13,100 characters; the budget is 12,000.",
    )  # fmt: skip
    await me(
        "send", to="lead", kind="question", payload={"entry": m1["id"]},
        body=f"{m1['id']}: trim the descriptions, or drop the schema titles?",
    )  # fmt: skip
    answer = await me.wait_for("answer")
    await me(
        "post_finding", scope=SCOPE, kind="status", refs=[answer["payload"]["decision"]],
        body="Dropped the schema titles as decided: 9,800 characters.",
    )  # fmt: skip
    await me("send", to="lead", kind="worker_done", body="mcp done")
    return [e["body"] for e in seen]


async def lead(me: Agent, start_team) -> dict[str, Any]:
    await me("register", role="lead")
    await me(
        "post_finding", scope=SCOPE, kind="intent", title="Auth review",
        body="audit: security bugs in src/auth. impl: fix token refresh. mcp: our tool surface. Post here; ask me.",
    )  # fmt: skip
    start_team()
    done = 0
    while done < 3:
        batch = (await me("poll", wait_seconds=WAIT))["messages"]
        for message in batch:
            if message["kind"] == "question":
                decision = await me(
                    "post_finding", scope=SCOPE, kind="decision", refs=[message["payload"]["entry"]],
                    body="Drop the titles from the input schemas; keep the descriptions.",
                )  # fmt: skip
                await me(
                    "send", reply_to=message["message_id"], kind="answer", payload={"decision": decision["id"]},
                    body=f"Decided in {decision['id']}: drop the titles.",
                )  # fmt: skip
            elif message["kind"] == "worker_done":
                done += 1
        if batch:
            await me("ack", receipts=[m["receipt"] for m in batch])
    findings = (await me("read_board", scope=SCOPE))["entries"]
    fixed = [e["id"] for e in findings if "fix" in e["tags"]]
    security = [e["id"] for e in findings if "security" in e["tags"]]
    await me(
        "post_finding", scope=SCOPE, kind="decision", refs=security + fixed,
        body=f"Accept {', '.join(security)}; the refresh bug is fixed by {', '.join(fixed)}: merge impl/refresh.",
    )  # fmt: skip
    return await me("read_board", scope=SCOPE, since=0, kinds=["decision", "finding"])


async def run_story(db: Path) -> Story:
    """All four servers start at once; the workers begin once the lead has opened the scope (it spawns
    them then), and each worker's registration completes its spawn, so they can address each other."""
    team_started, all_registered = anyio.Event(), anyio.Event()
    registered: list[str] = []
    first_reads: dict[str, list[str]] = {}
    agents: dict[str, Agent] = {}
    final: dict[str, Any] = {}

    def team_up_for(name: str):
        async def team_up() -> None:
            registered.append(name)
            if len(registered) == 3:
                all_registered.set()
            await all_registered.wait()

        return team_up

    async def worker(name, flow) -> None:
        async with spawned(db, name) as me:
            agents[name] = me
            await team_started.wait()
            first_reads[name] = await flow(me, team_up_for(name))

    async def the_lead() -> None:
        async with spawned(db, "lead") as me:
            agents["lead"] = me
            final.update(await lead(me, team_started.set))

    async with anyio.create_task_group() as tg:
        tg.start_soon(the_lead)
        for name, flow in (("audit", audit), ("impl", impl), ("mcp", mcp)):
            tg.start_soon(worker, name, flow)
    return Story({n: agents[n].calls for n in ("lead", "audit", "impl", "mcp")}, first_reads, final)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="store file (default: a fresh temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        story = anyio.run(run_story, Path(args.db or Path(tmp) / "story.db"))
    print(f"{'agent':<6} {'calls':>5}  tools in order")
    for name, calls in story.calls.items():
        print(f"{name:<6} {len(calls):>5}  {', '.join(calls)}")
    print(f"{'total':<6} {sum(map(len, story.calls.values())):>5}")
    print("\nthe lead's final read:")
    for entry in story.final["entries"]:
        print(f"  {entry['id']:>4} {entry['kind']:<8} {entry['author']:<5} {entry['title'] or entry['body']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

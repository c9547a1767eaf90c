"""Guarantees that hold across real ``teamroom serve`` processes sharing one store file.

Most use the session's shared servers (``team``); a test about a process dying spawns that one.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import anyio
import pytest

from tests.procs import served

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


async def test_four_processes_consuming_one_queue_get_each_message_exactly_once(team):
    total = 120
    got: list[list[str]] = [[] for _ in range(4)]
    sent: list[str] = []
    sender, *consumers = team.acting("lead", "worker", "worker", "worker", "worker")
    worker = consumers[0].agent

    async def consume(i):
        call = consumers[i]
        while len(sent) < total or sum(map(len, got)) < total:
            batch = (await call("poll", limit=3, wait_seconds=1))["messages"]
            if batch:
                await call("ack", receipts=[m["receipt"] for m in batch])
                got[i].extend(m["message_id"] for m in batch)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(consume, i)
        while worker not in [a["name"] for a in (await sender("agents"))["agents"]]:
            await anyio.sleep(0.01)
        for i in range(total):
            sent.append((await sender("send", to=worker, body=f"job {i}"))["message_id"])

    everything = [m for per in got for m in per]
    assert sorted(everything) == sorted(sent), "each message exactly once"
    assert sum(1 for per in got if per) >= 2, "the work was shared between processes"


async def test_a_long_poll_wakes_when_another_process_sends(team):
    waiter, sender = team.acting("waiter", "sender")
    await sender("register")
    result = {}

    async def wait():
        started = time.monotonic()
        result["messages"] = (await waiter("poll", wait_seconds=20))["messages"]
        result["waited"] = time.monotonic() - started

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        # The poll's first call makes the waiter known; once it is, the poll is waiting.
        while waiter.agent not in [a["name"] for a in (await sender("agents"))["agents"]]:
            await anyio.sleep(0.01)
        await sender("send", to=waiter.agent, body="wake up")
    assert [m["body"] for m in result["messages"]] == ["wake up"]
    assert result["waited"] < 10, "woke on the send, not at the end of its wait"


async def test_a_consumer_killed_mid_lease_loses_nothing(team):
    [lead] = team.acting("lead")
    worker = team.name("worker")
    async with served(team.db, agent=worker) as doomed:
        await doomed("register")
        sent = await lead("send", to=worker, body="survive me")
        first = (await doomed("poll", lease_seconds=1))["messages"]
        assert [m["attempt"] for m in first] == [1]
        doomed.kill()
        async with served(team.db, agent=worker) as second:
            again = (await second("poll", wait_seconds=15))["messages"]
            assert [(m["message_id"], m["attempt"]) for m in again] == [(sent["message_id"], 2)]
            assert (await second("ack", receipts=[again[0]["receipt"]]))["acked"] == 1


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


async def test_agents_in_two_worktrees_of_one_repository_meet_in_one_store(tmp_path: Path):
    repo, other = tmp_path / "repo", tmp_path / "repo-wt"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init", cwd=repo)
    _git("worktree", "add", "-q", str(other), cwd=repo)
    async with served(None, agent="main-agent", cwd=repo) as here, served(None, agent="wt-agent", cwd=other) as there:
        await here("register", role="lead")
        await there("send", to="main-agent", body="hello from the other worktree")
        got = (await here("poll"))["messages"]
        assert [(m["from"], m["body"]) for m in got] == [("wt-agent", "hello from the other worktree")]
    assert (repo / ".git" / "teamroom.db").exists()

"""Locks across real `teamroom serve` processes sharing one store file."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from tests.conftest import Caller
from tests.procs import served

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

FILES = [f"src/module_{i}.py" for i in range(8)]


@asynccontextmanager
async def _servers(db: Path, count: int) -> AsyncIterator[list[Caller]]:
    """``count`` server processes on one store, started in parallel (the first one alone: it migrates)."""
    callers: list[Caller] = []
    first, ready, done = anyio.Event(), anyio.Event(), anyio.Event()

    async def hold() -> None:  # a client must be closed by the task that opened it
        async with served(db) as call:
            callers.append(call)
            first.set()
            if len(callers) == count:
                ready.set()
            await done.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await first.wait()
        for _ in range(count - 1):
            tg.start_soon(hold)
        await ready.wait()
        try:
            yield callers
        finally:
            done.set()


async def _race(callers: list[Caller]) -> dict[str, list[tuple[str, int]]]:
    """Every process claims every file at once; {file: [(winner, token), ...]}."""
    wins: dict[str, list[tuple[str, int]]] = {f: [] for f in FILES}
    go = anyio.Event()

    async def claim(call: Caller, agent: str, file: str) -> None:
        await go.wait()
        result = await call("claim_lock", agent=agent, resources=[file])
        if result["granted"]:
            wins[file].append((agent, result["locks"][0]["token"]))
        else:
            assert result["conflicts"][0]["held_by"] != agent

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(callers):
            for file in random.sample(FILES, len(FILES)):
                tg.start_soon(claim, call, f"p{i}", file)
        go.set()
    return wins


async def test_five_processes_racing_for_eight_files_get_one_winner_each_with_growing_tokens(tmp_path: Path) -> None:
    db = tmp_path / "teamroom.db"
    with anyio.fail_after(60):
        async with _servers(db, 5) as callers:
            first = await _race(callers)
            assert all(len(winners) == 1 for winners in first.values()), first
            tokens = [token for [(_, token)] in first.values()]
            assert len(set(tokens)) == len(FILES)
            held = (await callers[0]("locks", agent="observer"))["locks"]
            assert {(lock["resource"], lock["holder"], lock["token"]) for lock in held} == {
                (file, agent, token) for file, [(agent, token)] in first.items()
            }

            for i, call in enumerate(callers):
                await call("release_lock", agent=f"p{i}")
            second = await _race(callers)
            assert all(len(winners) == 1 for winners in second.values()), second
            assert min(token for [(_, token)] in second.values()) > max(tokens)

            log = json.loads(await callers[0].resource("teamroom://events"))["events"]
            granted = [e["data"]["token"] for e in log if e["kind"] == "lock_claim"]
            assert len(granted) == 2 * len(FILES)
            assert granted == sorted(granted) and len(set(granted)) == len(granted)  # in commit order


async def test_a_waiter_in_one_process_is_granted_when_the_holder_in_another_releases(tmp_path: Path) -> None:
    db = tmp_path / "teamroom.db"
    with anyio.fail_after(60):
        async with _servers(db, 2) as (holder, waiter):
            held = await holder("claim_lock", agent="holder", resources=["src/**"])
            results: list[dict] = []

            async def wait_for_it() -> None:
                results.append(await waiter("claim_lock", agent="waiter", resources=["src/app.py"], wait_seconds=30))

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_for_it)
                while "waiter" not in {a["name"] for a in (await holder("agents", agent="holder"))["agents"]}:
                    await anyio.sleep(0.02)  # its first try has been refused: it is waiting now
                assert results == []
                with anyio.fail_after(5):  # far below wait_seconds: it woke on the release, not the timeout
                    await holder("release_lock", agent="holder")
                    while not results:
                        await anyio.sleep(0.01)
            [result] = results
            assert result["granted"] is True
            assert result["locks"][0]["token"] > held["locks"][0]["token"]

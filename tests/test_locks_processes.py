"""Locks across real `teamroom serve` processes sharing one store file (the session's shared servers)."""

from __future__ import annotations

import json
import random

import anyio
import pytest

from tests.procs import Acting

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


async def _race(callers: list[Acting], files: list[str]) -> dict[str, list[tuple[str, int]]]:
    """Every process claims every file at once; {file: [(winner, token), ...]}."""
    wins: dict[str, list[tuple[str, int]]] = {f: [] for f in files}
    go = anyio.Event()

    async def claim(call: Acting, file: str) -> None:
        await go.wait()
        result = await call("claim_lock", resources=[file])
        if result["granted"]:
            wins[file].append((call.agent, result["locks"][0]["token"]))
        else:
            assert result["conflicts"][0]["held_by"] != call.agent

    async with anyio.create_task_group() as tg:
        for call in callers:
            for file in random.sample(files, len(files)):
                tg.start_soon(claim, call, file)
        go.set()
    return wins


async def test_five_processes_racing_for_eight_files_get_one_winner_each_with_growing_tokens(team) -> None:
    files = [team.path(f"src/module_{i}.py") for i in range(8)]
    callers = team.acting(*(f"p{i}" for i in range(5)))
    with anyio.fail_after(60):
        first = await _race(callers, files)
        assert all(len(winners) == 1 for winners in first.values()), first
        tokens = [token for [(_, token)] in first.values()]
        assert len(set(tokens)) == len(files)
        held = (await callers[0]("locks", agent=team.name("observer"), resource=team.path("**")))["locks"]
        assert {(lock["resource"], lock["holder"], lock["token"]) for lock in held} == {
            (file, agent, token) for file, [(agent, token)] in first.items()
        }

        for call in callers:
            await call("release_lock")
        second = await _race(callers, files)
        assert all(len(winners) == 1 for winners in second.values()), second
        assert min(token for [(_, token)] in second.values()) > max(tokens)

        log = json.loads(await callers[0].resource("teamroom://events"))["events"]
        granted = [e["data"]["token"] for e in log if e["kind"] == "lock_claim" and e["subject"] in files]
        assert len(granted) == 2 * len(files)
        assert granted == sorted(granted) and len(set(granted)) == len(granted)  # in commit order


async def test_a_waiter_in_one_process_is_granted_when_the_holder_in_another_releases(team) -> None:
    holder, waiter = team.acting("holder", "waiter")
    with anyio.fail_after(60):
        held = await holder("claim_lock", resources=[team.path("src/**")])
        results: list[dict] = []

        async def wait_for_it() -> None:
            results.append(await waiter("claim_lock", resources=[team.path("src/app.py")], wait_seconds=30))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_it)
            while waiter.agent not in {a["name"] for a in (await holder("agents"))["agents"]}:
                await anyio.sleep(0.02)  # its first try has been refused: it is waiting now
            assert results == []
            with anyio.fail_after(5):  # far below wait_seconds: it woke on the release, not the timeout
                await holder("release_lock")
                while not results:
                    await anyio.sleep(0.01)
        [result] = results
        assert result["granted"] is True
        assert result["locks"][0]["token"] > held["locks"][0]["token"]

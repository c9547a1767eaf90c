"""Locks in one process: all-or-nothing claims, modes, fencing tokens, expiry, renewal, release."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from teamroom.store import ManualClock, SQLiteStore
from teamroom.store.rules import locks as lock_sql
from tests.conftest import ToolFailed, in_process

pytestmark = pytest.mark.anyio


async def _tokens(call, agent: str) -> dict[str, int]:
    held = await call("locks", agent=agent, holder=agent)
    return {lock["resource"]: lock["token"] for lock in held["locks"]}


# --- claiming -------------------------------------------------------------------------------


async def test_a_claim_grants_every_resource_normalised_with_growing_tokens(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        result = await call("claim_lock", agent="a", resources=["./src//app.py", "docs/", "deploy:prod"])
        assert result["granted"] is True and result["conflicts"] == []
        assert [lock["resource"] for lock in result["locks"]] == ["src/app.py", "docs/**", "deploy:prod"]
        tokens = [lock["token"] for lock in result["locks"]]
        assert tokens == sorted(tokens) and len(set(tokens)) == 3
        later = await call("claim_lock", agent="b", resources=["lib/x.py"])
        assert later["locks"][0]["token"] > max(tokens)


async def test_exclusive_blocks_exclusive_and_shared_on_overlapping_resources(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=["src/auth/**"], reason="refactoring auth")
        for mode in ("exclusive", "shared"):
            refused = await call("claim_lock", agent="b", resources=["src/*/login.py"], mode=mode)
            assert refused["granted"] is False and refused["locks"] == []
            [conflict] = refused["conflicts"]
            assert conflict["resource"] == "src/auth/**" and conflict["held_by"] == "a"
            assert conflict["reason"] == "refactoring auth" and conflict["requested"] == "src/*/login.py"
            assert conflict["example"] == "src/auth/login.py"
        assert (await call("claim_lock", agent="b", resources=["src/billing/**"]))["granted"] is True


@pytest.mark.parametrize("file", ["./odd:name.txt", "./a:b.txt", "x/../~name.txt"])
async def test_a_file_whose_first_segment_reads_like_a_name_drive_or_home_is_locked_as_that_file(
    db_path: Path, clock, file: str
) -> None:
    async with in_process(db_path, clock) as call:
        held = await call("claim_lock", agent="a", resources=[file])
        [lock] = held["locks"]
        assert lock["resource"] == "./" + file.removeprefix("./").removeprefix("x/../")  # what is stored
        for glob in ("**", "*.txt", "*name.txt" if "~" in file else "*:*.txt"):
            refused = await call("claim_lock", agent="b", resources=[glob])
            assert refused["granted"] is False and [c["held_by"] for c in refused["conflicts"]] == ["a"]
        shown = await call("locks", agent="b", resource=file)
        assert [entry["resource"] for entry in shown["locks"]] == [lock["resource"]]
        assert (await call("release_lock", agent="a", resources=[file]))["released"] == [lock["resource"]]


async def test_shared_locks_coexist_but_block_an_exclusive_claim(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        assert (await call("claim_lock", agent="a", resources=["schema.sql"], mode="shared"))["granted"]
        assert (await call("claim_lock", agent="b", resources=["schema.sql"], mode="shared"))["granted"]
        refused = await call("claim_lock", agent="c", resources=["*.sql"], mode="exclusive")
        assert sorted(c["held_by"] for c in refused["conflicts"]) == ["a", "b"]
        upgrade = await call("claim_lock", agent="a", resources=["schema.sql"], mode="exclusive")
        assert upgrade["granted"] is False and [c["held_by"] for c in upgrade["conflicts"]] == ["b"]


async def test_a_claim_with_one_conflict_grants_nothing(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=["b.py"])
        refused = await call("claim_lock", agent="b", resources=["a.py", "b.py", "c.py"])
        assert refused["granted"] is False and [c["requested"] for c in refused["conflicts"]] == ["b.py"]
        assert await _tokens(call, "b") == {}
        assert (await call("claim_lock", agent="c", resources=["a.py", "c.py"]))["granted"] is True


async def test_a_callers_own_locks_never_conflict_with_its_claims(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=["src/**"])
        assert (await call("claim_lock", agent="a", resources=["src/app.py"]))["granted"] is True
        assert set(await _tokens(call, "a")) == {"src/**", "src/app.py"}


async def test_claiming_what_you_hold_renews_it_and_keeps_its_token(db_path: Path, clock: ManualClock) -> None:
    async with in_process(db_path, clock) as call:
        first = (await call("claim_lock", agent="a", resources=["x.py"], ttl_seconds=60))["locks"][0]
        clock.advance(50)
        again = (await call("claim_lock", agent="a", resources=["x.py"], ttl_seconds=60))["locks"][0]
        assert again["token"] == first["token"] and again["renewed"] is True
        assert again["expires_at"] > first["expires_at"]
        clock.advance(50)  # 100 s after the first claim, 50 after the renewal
        assert (await call("claim_lock", agent="b", resources=["x.py"]))["granted"] is False


async def test_an_expired_lock_is_taken_over_with_a_new_token_and_the_takeover_is_logged(
    db_path: Path, clock: ManualClock
) -> None:
    async with in_process(db_path, clock) as call:
        old = (await call("claim_lock", agent="a", resources=["src/auth/**"], ttl_seconds=30))["locks"][0]
        clock.advance(31)
        assert (await call("locks", agent="b"))["locks"] == []
        new = (await call("claim_lock", agent="b", resources=["src/auth/login.py"]))["locks"][0]
        assert new["token"] > old["token"] and new["took_over_from"] == "a"
        log = json.loads(await call.resource("teamroom://events"))["events"]
        [takeover] = [e for e in log if e["kind"] == "lock_takeover"]
        assert takeover["agent"] == "b" and takeover["subject"] == "src/auth/**"
        assert takeover["data"]["previous_holder"] == "a" and takeover["data"]["previous_token"] == old["token"]
        with pytest.raises(ToolFailed) as caught:
            await call("release_lock", agent="a", resources=["src/auth/**"])
        assert caught.value.code == "not_found"


async def test_a_refusal_lists_fifty_conflicts_and_counts_the_rest(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=[f"src/f{i}.py" for i in range(60)])
        refused = await call("claim_lock", agent="b", resources=["src/"])
        assert len(refused["conflicts"]) == 50 and refused["more_conflicts"] == 10


async def test_an_expired_lock_nobody_takes_over_is_dropped_an_hour_later_and_logged(
    db_path: Path, clock: ManualClock
) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=["x.py"], ttl_seconds=60)
        clock.advance(60 + 3600)
        await call("heartbeat", agent="b")  # any write runs the housekeeping
        log = json.loads(await call.resource("teamroom://events"))["events"]
        [dropped] = [e for e in log if e["kind"] == "lock_expired"]
        assert dropped["subject"] == "x.py" and dropped["data"]["holder"] == "a"
        with pytest.raises(ToolFailed) as caught:
            await call("release_lock", agent="a", resources=["x.py"])
        assert caught.value.code == "not_found" and "you hold no locks" in caught.value.text


async def test_reclaiming_your_own_expired_lock_gives_a_new_token(db_path: Path, clock: ManualClock) -> None:
    async with in_process(db_path, clock) as call:
        old = (await call("claim_lock", agent="a", resources=["x.py"], ttl_seconds=30))["locks"][0]
        clock.advance(31)
        new = (await call("claim_lock", agent="a", resources=["x.py"]))["locks"][0]
        assert new["token"] > old["token"] and new["renewed"] is False


async def test_heartbeat_renews_every_lock_by_its_own_ttl(db_path: Path, clock: ManualClock) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=["short.py"], ttl_seconds=60)
        await call("claim_lock", agent="a", resources=["long.py"], ttl_seconds=600)
        before = await _tokens(call, "a")
        clock.advance(50)
        beat = await call("heartbeat", agent="a")
        assert beat["locks"] == ["long.py", "short.py"] and beat["leases_renewed"] == 2
        clock.advance(50)  # past the first expiry of short.py, within its renewal
        assert await _tokens(call, "a") == before
        clock.advance(20)  # 70 s after the heartbeat: short.py lapsed, long.py did not
        assert set(await _tokens(call, "a")) == {"long.py"}
        assert (await call("agents", agent="b"))["agents"][0]["locks"] == ["long.py"]


async def test_the_locks_tool_lists_overlapping_live_locks_by_holder(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=["src/auth/**", "deploy:prod"], reason="r")
        await call("claim_lock", agent="b", resources=["src/billing/pay.py", "README.md"], mode="shared")
        src = await call("locks", agent="c", resource="src/*/login.py")
        assert [(lock["resource"], lock["holder"], lock["reason"]) for lock in src["locks"]] == [
            ("src/auth/**", "a", "r")
        ]
        assert {lock["resource"] for lock in (await call("locks", agent="c", resource="src/**"))["locks"]} == {
            "src/auth/**",
            "src/billing/pay.py",
        }
        assert [lock["resource"] for lock in (await call("locks", agent="c", holder="b"))["locks"]] == [
            "README.md",
            "src/billing/pay.py",
        ]
        page = await call("locks", agent="c", limit=1)
        assert len(page["locks"]) == 1 and page["more"] == 3
        everything = json.loads(await call.resource("teamroom://locks"))
        assert len(everything["locks"]) == 4 and {"holder", "mode", "token", "expires_at"} <= set(
            everything["locks"][0]
        )


# --- releasing ------------------------------------------------------------------------------


async def test_release_without_resources_releases_everything_the_caller_holds(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=["x.py", "lib/**"])
        await call("claim_lock", agent="b", resources=["y.py"])
        assert sorted((await call("release_lock", agent="a"))["released"]) == ["lib/**", "x.py"]
        assert await _tokens(call, "a") == {} and set(await _tokens(call, "b")) == {"y.py"}
        assert (await call("release_lock", agent="a"))["released"] == []


async def test_releasing_another_agents_lock_is_not_owner_and_changes_nothing(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=["mine.py"])
        await call("claim_lock", agent="b", resources=["theirs.py"])
        with pytest.raises(ToolFailed) as caught:
            await call("release_lock", agent="a", resources=["mine.py", "theirs.py"])
        assert caught.value.code == "not_owner" and "'b'" in caught.value.text
        assert set(await _tokens(call, "a")) == {"mine.py"} and set(await _tokens(call, "b")) == {"theirs.py"}


async def test_releasing_what_nobody_holds_is_not_found_and_names_what_you_hold(db_path: Path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="a", resources=["mine.py"])
        with pytest.raises(ToolFailed) as caught:
            await call("release_lock", agent="a", resources=["mine.py", "nobody.py"])
        assert caught.value.code == "not_found" and "you hold: mine.py" in caught.value.text
        assert set(await _tokens(call, "a")) == {"mine.py"}
        assert (await call("release_lock", agent="a", resources=["./mine.py"]))["released"] == ["mine.py"]


# --- bad calls ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"resources": ["/etc/passwd"]}, "absolute"),
        ({"resources": ["../other/x.py"]}, "climbs out"),
        ({"resources": []}, "non-empty"),
        ({"resources": [f"f{i}.py" for i in range(101)]}, "limit is 100"),
        ({"resources": ["x.py"], "ttl_seconds": 0}, "ttl_seconds"),
        ({"resources": ["x.py"], "ttl_seconds": 86_401}, "ttl_seconds"),
        ({"resources": ["x.py"], "wait_seconds": 51}, "wait_seconds"),
    ],
)
async def test_a_bad_claim_is_invalid_and_changes_nothing(db_path: Path, clock, arguments, words: str) -> None:
    async with in_process(db_path, clock) as call:
        with pytest.raises(ToolFailed) as caught:
            await call("claim_lock", agent="a", **arguments)
        assert caught.value.code == "invalid" and words in caught.value.text
        assert (await call("locks", agent="b"))["locks"] == []


# --- waiting --------------------------------------------------------------------------------


async def test_a_waiting_claim_is_granted_when_the_holder_releases(db_path: Path) -> None:
    async with in_process(db_path) as call:
        await call("claim_lock", agent="a", resources=["x.py"])
        results: list[dict] = []

        async def waiter() -> None:
            results.append(await call("claim_lock", agent="b", resources=["x.py"], wait_seconds=20))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                while "b" not in {a["name"] for a in (await call("agents", agent="a"))["agents"]}:
                    await anyio.sleep(0.01)  # b's first try has happened: b is now known
                await call("release_lock", agent="a")
        [result] = results
        assert result["granted"] is True and result["locks"][0]["resource"] == "x.py"


async def test_a_wait_that_ends_returns_the_conflicts(db_path: Path) -> None:
    async with in_process(db_path) as call:
        await call("claim_lock", agent="a", resources=["x.py"], reason="busy")
        with anyio.fail_after(5):
            result = await call("claim_lock", agent="b", resources=["x.py"], wait_seconds=0.3)
        assert result["granted"] is False and result["conflicts"][0]["reason"] == "busy"


# --- the SQL contract handoffs build on -------------------------------------------------------


async def test_reassign_parks_locks_for_another_holder_keeping_tokens(db_path: Path, clock: ManualClock) -> None:
    store = SQLiteStore(db_path, clock=clock)
    await store.open()
    try:
        granted = await store.claim_lock("a", ["src/**", "x.py"], "exclusive", 60, None)
        tokens = {lock.resource: lock.token for lock in granted.locks}
        parked = await store._write(lock_sql.reassign, "a", "handoff:h1", None, clock.now_ms() + 3_600_000)
        assert {row["resource"]: row["token"] for row in parked} == tokens
        assert (await store.claim_lock("a", ["src/app.py"], "exclusive", 60, None)).granted is False
        clock.advance(120)  # past the original TTL; parked until an hour from the handoff
        assert (await store.claim_lock("c", ["x.py"], "exclusive", 60, None)).granted is False
        moved = await store._write(lock_sql.reassign, "handoff:h1", "b", ["x.py"], None)
        assert [(row["resource"], row["token"], row["holder"]) for row in moved] == [("x.py", tokens["x.py"], "b")]
        renewed, held = await store._write(lock_sql.renew, "b", None)
        assert (renewed, held) == (1, ["x.py"])
        assert [row["resource"] for row in await store._read(lock_sql.held_by, "handoff:h1")] == ["src/**"]
    finally:
        await store.close()

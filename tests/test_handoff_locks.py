"""handoff(transfer_locks=true): locks held for the handoff, then moved to whoever resumes it (in-process)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ToolFailed, in_process

pytestmark = pytest.mark.anyio

TASK = {"task": "fix-refresh", "summary": "half done", "next_step": "finish the tests"}


async def _holders(call) -> dict[str, str]:
    return {lock["resource"]: lock["holder"] for lock in (await call("locks", agent="lead"))["locks"]}


async def test_transferred_locks_are_held_for_the_handoff_and_move_to_the_taker_with_new_greater_tokens(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="rev")
        claimed = await call("claim_lock", agent="impl", resources=["src/auth/**", "deploy:staging"], ttl_seconds=600)
        tokens = {lock["resource"]: lock["token"] for lock in claimed["locks"]}
        sent = await call("handoff", agent="impl", to="rev", transfer_locks=True, **TASK)
        parked = await _holders(call)
        intruder = await call("claim_lock", agent="intruder", resources=["src/auth/login.py"])
        impl_beat = await call("heartbeat", agent="impl")
        with pytest.raises(ToolFailed) as impl_release:
            await call("release_lock", agent="impl", resources=["deploy:staging"])
        clock.advance(60)
        taken = await call("resume", agent="rev")
        after = await _holders(call)
        rev_beat = await call("heartbeat", agent="rev")
        events = json.loads(await call.resource("teamroom://events"))["events"]
    holder = f"handoff:{sent['handoff_id']}"
    assert sorted(sent["locks"]) == ["deploy:staging", "src/auth/**"]
    assert parked == {"deploy:staging": holder, "src/auth/**": holder}
    assert not intruder["granted"]
    assert [c["held_by"] for c in intruder["conflicts"]] == [holder]
    assert impl_beat["locks"] == []
    assert impl_release.value.code == "not_owner" and holder in impl_release.value.text
    assert sorted(taken["handoff"]["locks"]) == ["deploy:staging", "src/auth/**"]
    # SPEC §3: the taker gets new tokens, greater than any the previous holder had (its late write is fenced off)
    assert {lock["resource"] for lock in taken["locks"]} == set(tokens)
    assert min(lock["token"] for lock in taken["locks"]) > max(tokens.values())
    assert {lock["holder"] for lock in taken["locks"]} == {"rev"}
    # The taker's locks run for their own TTL from the moment it took them.
    assert all(lock["expires_at"] > taken["handoff"]["taken_at"] for lock in taken["locks"])
    assert after == {"deploy:staging": "rev", "src/auth/**": "rev"}
    assert sorted(rev_beat["locks"]) == ["deploy:staging", "src/auth/**"]
    transfers = [(e["data"]["from_holder"], e["data"]["to_holder"]) for e in events if e["kind"] == "lock_transfer"]
    assert transfers.count(("impl", holder)) == 2 and transfers.count((holder, "rev")) == 2


async def test_a_checkpoint_with_transfer_keeps_the_locks_past_their_ttl_for_its_writer(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="impl", resources=["src/auth/refresh.py"], ttl_seconds=60)
        await call("handoff", agent="impl", transfer_locks=True, **TASK)
        clock.advance(3600)  # the writer crashed and came back an hour later; its own lock would have expired
        blocked = await call("claim_lock", agent="intruder", resources=["src/auth/refresh.py"])
        back = await call("resume", agent="impl")
        again = await call("resume", agent="impl")
    assert not blocked["granted"]
    assert [lock["resource"] for lock in back["locks"]] == ["src/auth/refresh.py"]
    assert again["resumed_before"] and [lock["holder"] for lock in again["locks"]] == ["impl"]


async def test_locks_parked_for_a_handoff_nobody_takes_are_free_after_a_day(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="impl", resources=["src/auth/refresh.py"])
        await call("handoff", agent="impl", transfer_locks=True, **TASK)
        clock.advance(24 * 3600 + 1)
        taken_over = await call("claim_lock", agent="other", resources=["src/auth/refresh.py"])
        late = await call("resume", agent="impl")
    assert taken_over["granted"]
    assert taken_over["locks"][0]["took_over_from"].startswith("handoff:h")
    assert late["handoff"]["locks"] == ["src/auth/refresh.py"] and late["locks"] == []


async def test_without_transfer_the_locks_stay_with_the_caller(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="rev")
        await call("claim_lock", agent="impl", resources=["src/auth/**"])
        sent = await call("handoff", agent="impl", to="rev", **TASK)
        taken = await call("resume", agent="rev")
        holders = await _holders(call)
    assert (sent["locks"], taken["handoff"]["locks"], taken["locks"]) == ([], [], [])
    assert holders == {"src/auth/**": "impl"}


async def test_a_refused_handoff_transfers_nothing(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("claim_lock", agent="impl", resources=["src/auth/**"])
        with pytest.raises(ToolFailed):
            await call("handoff", agent="impl", to="nobody", transfer_locks=True, **TASK)
        holders = await _holders(call)
    assert holders == {"src/auth/**": "impl"}

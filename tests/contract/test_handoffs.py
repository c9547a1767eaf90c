"""Handoffs: which one resume chooses, taking it once, checkpoints, and locks held for the taker
(SPEC §3 Handoffs)."""

from __future__ import annotations

import pytest

from teamroom.errors import Conflict, Invalid, NotFound, NotOwner
from tests.contract.support import claim, events, handoff, holders, lease, refused, register, view

pytestmark = pytest.mark.asyncio

FIELDS = {
    "done": ["expiry check in src/auth/refresh.py"],
    "remaining": ["tests", "changelog"],
    "blockers": ["CI is red on main"],
    "files": ["src/auth/refresh.py", "tests/test_auth.py"],
    "branch": "impl/refresh",
    "scope": "auth-review",
}


async def test_a_handoff_is_stored_and_sent_to_its_recipients_as_a_handoff_message_carrying_the_record(store):
    async with store:
        await register(store, "reviewer")
        sent = await handoff(
            store, "impl", "fix-refresh", summary="half done", next_step="the tests", to=["reviewer"], **FIELDS
        )
        [message] = (await lease(store, "reviewer")).messages
        taken = await store.resume("reviewer", None, sent.handoff_id)
    assert (sent.recipients, sent.locks, message.message_id) == (["reviewer"], [], sent.message_id)
    assert (message.kind, message.from_, message.payload["handoff_id"]) == ("handoff", "impl", sent.handoff_id)
    record = taken.handoff
    assert (record.handoff_id, record.from_, record.task, record.summary, record.next_step, record.to) == (
        sent.handoff_id, "impl", "fix-refresh", "half done", "the tests", ["reviewer"],
    )  # fmt: skip
    assert {k: getattr(record, k) for k in FIELDS} == FIELDS
    assert {k: message.payload[k] for k in FIELDS} == FIELDS and message.payload["taken_by"] is None


async def test_resume_takes_the_newest_open_handoff_addressed_to_the_caller_once_and_logs_who_took_it(store, clock):
    async with store:
        await register(store, "reviewer")
        older = await handoff(store, "impl", "older", to=["reviewer"])
        newer = await handoff(store, "audit", "newer", to=["reviewer"])
        await handoff(store, "audit", "not-for-reviewer")
        clock.advance(5)
        first = await store.resume("reviewer", None, None)
        second = await store.resume("reviewer", None, None)
        third = await store.resume("reviewer", None, None)  # nothing open left: the newest it took
        taken = [(e.agent, e.subject, e.data["from"]) for e in await events(store, "handoff_taken")]
    assert (first.handoff.handoff_id, first.handoff.taken_by, first.resumed_before) == (
        newer.handoff_id, "reviewer", False,
    )  # fmt: skip
    assert first.handoff.taken_at > first.handoff.created_at
    assert (second.handoff.handoff_id, second.resumed_before) == (older.handoff_id, False)
    assert (third.handoff.handoff_id, third.resumed_before) == (newer.handoff_id, True)
    assert taken == [("reviewer", newer.handoff_id, "audit"), ("reviewer", older.handoff_id, "impl")]


async def test_a_handoff_to_a_role_is_taken_by_a_member_even_one_registered_after_it(store):
    async with store:
        await register(store, "rev-1", "reviewer")
        sent = await handoff(store, "impl", "fix", to=["@reviewers"])
        await register(store, "rev-2", "reviewer")
        await register(store, "builder", "builder")
        async with refused(store, NotFound):
            await store.resume("builder", None, None)
        taken = await store.resume("rev-2", None, None)
    assert sent.recipients == ["rev-1"]
    assert (taken.handoff.handoff_id, taken.handoff.taken_by) == (sent.handoff_id, "rev-2")


async def test_an_agent_resuming_its_own_task_gets_its_own_last_checkpoint(store, make_store):
    async with store:
        await handoff(store, "impl", "fix", summary="first checkpoint")
        last = await handoff(store, "impl", "fix", summary="second checkpoint")
    async with make_store() as after_a_crash:
        by_task = await after_a_crash.resume("impl", "fix", None)
        by_nothing = await after_a_crash.resume("impl", None, None)
    assert (last.recipients, last.message_id) == ([], None)
    assert (by_task.handoff.handoff_id, by_task.handoff.summary, by_task.resumed_before) == (
        last.handoff_id, "second checkpoint", False,
    )  # fmt: skip
    assert (by_nothing.handoff.handoff_id, by_nothing.resumed_before) == (last.handoff_id, True)


async def test_a_taker_resuming_again_gets_the_same_record_and_nothing_changes(store, clock):
    async with store:
        await register(store, "reviewer")
        sent = await handoff(store, "impl", "fix", to=["reviewer"])
        first = await store.resume("reviewer", None, sent.handoff_id)
        clock.advance(60)
        before = await view(store)
        again = await store.resume("reviewer", "fix", None)
        after = await view(store)
    assert again.resumed_before and again.handoff == first.handoff
    assert after["events"] == before["events"], "taken once"


async def test_a_handoff_taken_by_one_agent_is_refused_to_another_and_the_refusal_says_who(store):
    async with store:
        sent = await handoff(store, "impl", "fix")
        await store.resume("rev-1", "fix", None)
        await register(store, "rev-2")
        async with refused(store, Conflict, "'rev-1'"):
            await store.resume("rev-2", None, sent.handoff_id)
        async with refused(store, NotFound, "'rev-1'"):
            await store.resume("rev-2", "fix", None)
        async with refused(store, Invalid, "'fix'"):
            await store.resume("rev-1", "other-task", sent.handoff_id)


async def test_resume_with_nothing_to_take_is_not_found(store):
    async with store:
        await register(store, "impl")
        for task, handoff_id in ((None, None), ("nope", None), (None, "h99"), (None, "x")):
            async with refused(store, NotFound):
                await store.resume("impl", task, handoff_id)


async def test_resume_acknowledges_the_takers_own_handoff_message_only(store, clock):
    async with store:
        await register(store, "reviewer")
        await register(store, "other")
        await handoff(store, "impl", "fix", to=["reviewer", "other"])
        [leased] = (await lease(store, "reviewer")).messages
        await store.resume("reviewer", None, None)
        late_ack = await store.ack("reviewer", [leased.receipt])
        clock.advance(400)  # past the lease: an unacked message would come back
        mine = await lease(store, "reviewer")
        theirs = await lease(store, "other")
    assert late_ack.acked == 1 and mine.messages == []
    assert [m.kind for m in theirs.messages] == ["handoff"]


async def test_after_handing_a_task_on_an_agent_does_not_get_its_older_records_back(store):
    async with store:
        await register(store, "next")
        await handoff(store, "impl", "fix", summary="checkpoint")
        await store.resume("impl", None, None)
        await handoff(store, "impl", "fix", summary="yours now", to=["next"])
        await store.resume("next", None, None)
        async with refused(store, NotFound):
            await store.resume("impl", None, None)


async def test_a_handoff_to_an_unknown_agent_is_not_found_and_stores_and_transfers_nothing(store):
    async with store:
        await claim(store, "impl", ["src/auth/**"])
        async with refused(store, NotFound, "known agents"):
            await handoff(store, "impl", "fix", to=["reviewr"], transfer_locks=True)
        async with refused(store, NotFound):
            await store.resume("impl", "fix", None)


# --- locks held for the taker -------------------------------------------------------------------


async def test_transferred_locks_are_held_for_the_handoff_and_move_to_the_taker_for_their_own_ttl(store, clock):
    async with store:
        await register(store, "rev")
        claimed = await claim(store, "impl", ["src/auth/**", "deploy:staging"], ttl=600)
        sent = await handoff(store, "impl", "fix", to=["rev"], transfer_locks=True)
        parked = await holders(store)
        intruder = await claim(store, "intruder", ["src/auth/login.py"])
        impl_beat = await store.heartbeat("impl", None, None, None)
        async with refused(store, NotOwner, f"handoff:{sent.handoff_id}"):
            await store.release_lock("impl", ["deploy:staging"])
        clock.advance(60)
        taken = await store.resume("rev", None, None)
        after = await holders(store)
        clock.advance(599)  # 659 s after the claim, 599 after the taking
        still = await holders(store)
        transfers = [(e.data["from_holder"], e.data["to_holder"]) for e in await events(store, "lock_transfer")]
    parking = f"handoff:{sent.handoff_id}"
    assert sorted(sent.locks) == ["deploy:staging", "src/auth/**"]
    assert parked == {"deploy:staging": parking, "src/auth/**": parking}
    assert not intruder.granted and [c.held_by for c in intruder.conflicts] == [parking]
    assert impl_beat.locks == []
    assert sorted(taken.handoff.locks) == ["deploy:staging", "src/auth/**"]
    assert {lock.holder for lock in taken.locks} == {"rev"} and len(taken.locks) == 2
    assert min(lock.token for lock in taken.locks) >= min(lock.token for lock in claimed.locks)
    assert all(lock.expires_at > taken.handoff.taken_at for lock in taken.locks)
    assert after == still == {"deploy:staging": "rev", "src/auth/**": "rev"}
    assert transfers.count(("impl", parking)) == 2 and transfers.count((parking, "rev")) == 2


async def test_a_checkpoint_with_transfer_keeps_its_writers_locks_past_their_ttl(store, clock):
    async with store:
        await claim(store, "impl", ["src/auth/refresh.py"], ttl=60)
        await handoff(store, "impl", "fix", transfer_locks=True)
        clock.advance(3600)  # the writer crashed and came back an hour later
        blocked = await claim(store, "intruder", ["src/auth/refresh.py"])
        back = await store.resume("impl", None, None)
        again = await store.resume("impl", None, None)
    assert not blocked.granted
    assert [(lock.resource, lock.holder) for lock in back.locks] == [("src/auth/refresh.py", "impl")]
    assert again.resumed_before and [lock.holder for lock in again.locks] == ["impl"]


async def test_locks_held_for_a_handoff_nobody_takes_are_free_after_a_day(store, clock):
    async with store:
        await claim(store, "impl", ["src/auth/refresh.py"])
        await handoff(store, "impl", "fix", transfer_locks=True)
        clock.advance(24 * 3600 + 1)
        taken_over = await claim(store, "other", ["src/auth/refresh.py"])
        late = await store.resume("impl", None, None)
    assert taken_over.granted and taken_over.locks[0].took_over_from.startswith("handoff:")
    assert late.handoff.locks == ["src/auth/refresh.py"] and late.locks == []


async def test_without_transfer_the_locks_stay_with_the_writer(store):
    async with store:
        await register(store, "rev")
        await claim(store, "impl", ["src/auth/**"])
        sent = await handoff(store, "impl", "fix", to=["rev"])
        taken = await store.resume("rev", None, None)
        left = await holders(store)
    assert (sent.locks, taken.handoff.locks, taken.locks) == ([], [], [])
    assert left == {"src/auth/**": "impl"}

"""Operations (SPEC §9): retention of messages, stats, dead letters and redrive, forced lock release, forgetting
an agent. What is the same on every backend; the audit log's archive is the SQLite store's (tests/test_ops.py)."""

from __future__ import annotations

import pytest

from teamroom.errors import Conflict, NotFound
from teamroom.store import base
from tests.contract.support import claim, events, handoff, holders, lease, post, refused, register, send, view

pytestmark = pytest.mark.asyncio

DAY = 86_400
RETENTION = 14



async def _team(store) -> None:
    await register(store, "lead", "lead")
    await register(store, "b1", "builder")
    await register(store, "b2", "builder")


async def _ack_all(store, agent: str) -> None:
    receipts = [m.receipt for m in (await lease(store, agent, limit=100)).messages]
    if receipts:
        await store.ack(agent, receipts)


async def _kill(store, to: str, body: str = "doomed") -> str:
    """A message to ``to`` that dies at once: one attempt, nacked."""
    sent = await send(store, "lead", to, body, max_attempts=1)
    [leased] = (await lease(store, to)).messages
    assert (await store.nack(to, leased.receipt, "cannot", 0)).state == "dead"
    return sent.message_id


async def _notices(store, message_id: str):
    """The delivery_failed notices about ``message_id`` waiting for its sender."""
    return [m for m in (await store.inbox("lead", 100)).messages if m.reply_to == message_id]


async def _stored(store, thread_id: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The messages of a thread still stored, each with its deliveries' (recipient, state)."""
    try:
        thread = await store.thread(None, thread_id, 500)
    except NotFound:
        return []
    return [(m.message_id, [(d.to, d.state) for d in m.deliveries]) for m in thread.messages]


# --- retention --------------------------------------------------------------------------------


async def test_gc_deletes_finished_deliveries_and_the_messages_left_with_none_and_keeps_everything_else(store, clock):
    async with store:
        await _team(store)
        acked = await send(store, "lead", "b1", "done with")
        both = await send(store, "lead", ["b1", "b2"], "half read")
        expired = await send(store, "lead", "b2", "too late", ttl_seconds=60)
        await _ack_all(store, "b1")
        dead = await _kill(store, "b1")
        parcel = await handoff(store, "lead", "auth", to=["b1"])
        await _ack_all(store, "b1")  # the handoff's message: acked, but a handoff names it
        entry = await post(store, "lead", "the schema is settled")
        clock.advance(60 + 1)
        await store.heartbeat("lead", None, None, None)  # the sweep expires the TTL
        clock.advance(15 * DAY)
        fresh = await send(store, "lead", "b1", "new work")
        await _ack_all(store, "b1")

        result = await store.gc(RETENTION, by="human")

        assert (result.deliveries, result.messages) == (5, 3)
        assert await _stored(store, acked.thread_id) == []
        assert await _stored(store, both.thread_id) == [(both.message_id, [("b2", "queued")])]
        for gone in (expired.message_id, dead):  # gone; the notices to their sender wait unread, so they stay
            assert [m for m, _ in await _stored(store, gone)] == [n.message_id for n in await _notices(store, gone)]
        assert [(m, d) for m, d in await _stored(store, parcel.message_id)] == [(parcel.message_id, [])], (
            "a handoff's message stays with the handoff"
        )
        resumed = await store.resume("b1", "auth", None)
        assert resumed.handoff.handoff_id == parcel.handoff_id, "handoffs stay"
        board = await store.read_board(
            None, "main", since=0, kinds=None, author=None, tags=None, limit=10, include_superseded=False
        )
        assert [e.id for e in board.entries] == [entry.id], "board entries stay"
        assert await _stored(store, fresh.thread_id) == [(fresh.message_id, [("b1", "acked")])]
        [gc] = await events(store, "gc")
        assert gc.data == {"by": "human", "deliveries": 5, "messages": 3, "events": result.events,
                           "retention_days": RETENTION}  # fmt: skip


async def test_a_delivery_that_finished_within_the_retention_stays_however_old_its_message(store, clock):
    async with store:
        await _team(store)
        sent = await send(store, "lead", "b1", "slow one")
        clock.advance(10 * DAY)
        await _ack_all(store, "b1")
        clock.advance(10 * DAY)
        assert (await store.gc(RETENTION, by="human")).deliveries == 0
        assert await _stored(store, sent.thread_id) == [(sent.message_id, [("b1", "acked")])]
        clock.advance(5 * DAY)
        assert (await store.gc(RETENTION, by="human")).messages == 1


async def test_a_dry_run_counts_what_the_run_deletes_and_changes_nothing(store, clock):
    async with store:
        await _team(store)
        for i in range(5):
            await send(store, "lead", ["b1", "b2"], f"job {i}")
        await _ack_all(store, "b1")
        await _ack_all(store, "b2")
        await send(store, "lead", "b1", "still waiting")
        clock.advance(15 * DAY)
        before = await view(store)
        dry = await store.gc(RETENTION, by="human", dry_run=True)
        assert await view(store) == before, "a dry run changed the store"
        real = await store.gc(RETENTION, by="human")
    assert (dry.dry_run, dry.deliveries, dry.messages) == (True, 10, 5)
    assert (real.deliveries, real.messages, real.events) == (dry.deliveries, dry.messages, dry.events)


async def test_gc_goes_page_by_page_and_stops_at_the_first_message_that_is_not_old(store, clock, monkeypatch):
    monkeypatch.setattr(base, "GC_MESSAGES_PAGE", 3)
    async with store:
        await _team(store)
        for i in range(10):
            await send(store, "lead", "b1", f"old {i}")
        await _ack_all(store, "b1")
        clock.advance(15 * DAY)
        new = await send(store, "lead", "b1", "new")
        await _ack_all(store, "b1")
        result = await store.gc(RETENTION, by="human")
        assert await _stored(store, new.thread_id) == [(new.message_id, [("b1", "acked")])]
    assert (result.deliveries, result.messages) == (10, 10)


async def test_message_and_thread_ids_never_repeat_once_every_message_is_gone(store, clock):
    async with store:
        await _team(store)
        for _ in range(3):
            last = await send(store, "lead", "b1", "x")
        await _ack_all(store, "b1")
        clock.advance(15 * DAY)
        assert (await store.gc(RETENTION, by="human")).messages == 3
        after = await send(store, "lead", "b1", "y")
    assert int(after.message_id[1:]) == int(last.message_id[1:]) + 1
    assert after.thread_id == after.message_id


# --- stats ------------------------------------------------------------------------------------


async def test_stats_count_each_agents_queue_leases_dead_letters_oldest_waiting_message_and_locks(store, clock):
    async with store:
        await _team(store)
        await send(store, "lead", "b1", "first")
        clock.advance(60)
        await send(store, "lead", "b1", "second")
        await send(store, "lead", "b2", "taken")
        await lease(store, "b2")
        await _kill(store, "b2")
        await claim(store, "b1", ["src/a.py", "src/b/**"])
        clock.advance(30)
        stats = await store.stats()
        logged = len(await events(store))
    by_name = {a.name: a for a in stats.agents}
    assert set(by_name) == {"lead", "b1", "b2"}
    b1, b2 = by_name["b1"], by_name["b2"]
    assert (b1.queued, b1.leased, b1.dead, b1.locks, b1.oldest_queued_seconds) == (2, 0, 0, 2, 90.0)
    assert (b2.queued, b2.leased, b2.dead, b2.locks, b2.oldest_queued_seconds) == (0, 1, 1, 0, None)
    assert by_name["lead"].queued == 1, "the delivery_failed about the dead letter"
    assert stats.deliveries == {"queued": 3, "leased": 1, "dead": 1}
    assert (stats.messages, stats.locks) == (5, 2)
    assert stats.events.count == logged and stats.events.archived_through == 0


# --- dead letters and redrive -------------------------------------------------------------------


async def test_redrive_queues_a_dead_letter_again_with_attempts_from_zero_and_the_senders_notice_stays(store, clock):
    async with store:
        await _team(store)
        message_id = await _kill(store, "b1")
        [letter] = (await store.dead_letters("b1", 10)).dead
        assert (letter.message_id, letter.to, letter.from_, letter.attempts) == (message_id, "b1", "lead", 1)
        assert "cannot" in letter.reason

        result = await store.redrive("human", message_id, None)

        assert [(r.message_id, r.to, r.attempts) for r in result.redriven] == [(message_id, "b1", 1)]
        assert (await store.dead_letters(None, 10)).total == 0
        [again] = (await lease(store, "b1")).messages
        assert (again.message_id, again.attempt, again.max_attempts) == (message_id, 1, 1)
        notices = [m for m in (await store.inbox("lead", 10)).messages if m.kind == "delivery_failed"]
        assert len(notices) == 1, "the sender's delivery_failed stays"
        [event] = await events(store, "redrive")
        assert (event.agent, event.subject, event.data) == ("b1", message_id, {"attempts": 1, "by": "human"})


async def test_redrive_all_takes_every_dead_letter_and_skips_recipients_no_longer_known(store, clock):
    async with store:
        await _team(store)
        first, second = await _kill(store, "b1"), await _kill(store, "b2")
        clock.advance(16 * 60)
        await store.forget_agent("human", "b2", False)
        result = await store.redrive("human", None, None)
    assert [(r.message_id, r.to) for r in result.redriven] == [(first, "b1")]
    assert [(r.message_id, r.to) for r in result.skipped] == [(second, "b2")]


async def test_redrive_of_a_message_with_no_dead_delivery_is_not_found_naming_its_states_and_changes_nothing(store):
    async with store:
        await _team(store)
        sent = await send(store, "lead", "b1")
        async with refused(store, NotFound, "has no dead delivery", "b1 queued"):
            await store.redrive("human", sent.message_id, None)
        async with refused(store, NotFound, "no message 'm999'"):
            await store.redrive("human", "m999", None)


# --- a lock taken away, an agent forgotten ------------------------------------------------------


async def test_a_forced_release_frees_the_lock_for_the_next_claimer_and_the_log_says_who_did_it(store):
    async with store:
        await _team(store)
        held = (await claim(store, "b1", ["src/auth/**"])).locks[0]
        result = await store.force_release("human", "./src//auth/**", None)
        assert [(r.resource, r.holder, r.token, r.expired) for r in result.released] == [
            ("src/auth/**", "b1", held.token, False)
        ]
        taken = await claim(store, "b2", ["src/auth/login.py"])
        assert taken.granted and taken.locks[0].token > held.token
        [event] = [e for e in await events(store, "lock_release") if e.data.get("forced")]
        assert (event.agent, event.subject, event.data["by"]) == ("b1", "src/auth/**", "human")
        async with refused(store, NotFound, "no lock on 'src/auth/*'", "src/auth/login.py (b2)"):
            await store.force_release("human", "src/auth/*", None)


async def test_forgetting_an_agent_is_refused_while_it_is_live_or_has_work_and_changes_nothing(store, clock):
    async with store:
        await _team(store)
        async with refused(store, Conflict, "b1 was seen", "--force"):
            await store.forget_agent("human", "b1", False)
        await send(store, "lead", "b1", "for you")
        await claim(store, "b1", ["src/a.py"], ttl=3600)
        clock.advance(20 * 60)
        async with refused(store, Conflict, "1 message(s) queued", "holds 1 lock(s): src/a.py"):
            await store.forget_agent("human", "b1", False)
        async with refused(store, NotFound, "no agent named 'b9'"):
            await store.forget_agent("human", "b9", True)


async def test_a_forgotten_agent_is_out_of_all_and_its_role_its_work_is_dead_lettered_and_its_history_stays(
    store, clock
):
    async with store:
        await _team(store)
        sent = await send(store, "lead", "b1", "for you")
        await claim(store, "b1", ["src/a.py"])

        result = await store.forget_agent("human", "b1", True)

        assert (result.agent, result.dead, result.released) == ("b1", 1, ["src/a.py"])
        assert (await send(store, "lead", "@builders")).recipients == ["b2"]
        assert (await send(store, "lead", "@all")).recipients == ["b2"]
        assert "b1" not in (await store.known_names())["agents"]
        assert await holders(store) == {}
        [letter] = (await store.dead_letters(None, 10)).dead
        assert (letter.message_id, letter.to) == (sent.message_id, "b1") and "forgotten" in letter.reason
        assert [m.kind for m in (await store.inbox("lead", 10)).messages] == ["delivery_failed"]
        assert (await _stored(store, sent.thread_id))[0] == (sent.message_id, [("b1", "dead")]), "history stays"
        [event] = await events(store, "agent_forgotten")
        assert (event.agent, event.data) == ("b1", {"by": "human", "dead": 1, "released": ["src/a.py"]})
        await register(store, "b1", "builder")  # it comes back: known again, as any new name
        assert (await send(store, "lead", "@builders")).recipients == ["b1", "b2"]

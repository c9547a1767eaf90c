"""Messages: one delivery per recipient, leases and receipts, attempts, dead letters, TTLs, priorities,
idempotency keys, threads (SPEC §3 Messages, §6)."""

from __future__ import annotations

import asyncio

import pytest

from teamroom.errors import Invalid, LeaseExpired, NotFound, NotOwner
from tests.contract.support import bodies, events, lease, refused, register, send, view

pytestmark = pytest.mark.asyncio


async def _team(store, *names: str) -> None:
    for name in names:
        await register(store, name)


def _receipt(polled) -> str:
    [message] = polled.messages
    return message.receipt


# --- send -------------------------------------------------------------------------------------


async def test_a_send_gives_each_recipient_its_own_queued_delivery_in_a_thread_named_after_the_message(store):
    async with store:
        await _team(store, "a", "b", "c")
        sent = await send(store, "a", ["b", "c"], "hi", subject="s", kind="question", payload={"n": 1})
        thread = await store.thread(None, sent.thread_id, 100)
        [leased] = (await lease(store, "b")).messages
    assert (sent.recipients, sent.thread_id, sent.duplicate) == (["b", "c"], sent.message_id, False)
    [message] = thread.messages
    assert [(d.to, d.state, d.attempt) for d in message.deliveries] == [("b", "queued", 0), ("c", "queued", 0)]
    assert (leased.message_id, leased.from_, leased.to, leased.subject, leased.kind, leased.payload) == (
        sent.message_id, "a", ["b", "c"], "s", "question", {"n": 1},
    )  # fmt: skip
    assert (leased.priority, leased.attempt, leased.max_attempts, leased.reply_to) == ("normal", 1, 5, None)


async def test_a_role_address_reaches_every_agent_of_that_role_or_capability_but_the_sender(store):
    async with store:
        await register(store, "lead", "builder")
        await register(store, "b1", "builder")
        await register(store, "b2", "reviewer", ["builder"])
        await register(store, "r1", "reviewer")
        plural = await send(store, "lead", "@builders")
        singular = await send(store, "lead", "@builder")
        mixed = await send(store, "lead", ["r1", "@reviewer", "b1"])
    assert plural.recipients == singular.recipients == ["b1", "b2"]
    assert mixed.recipients == ["r1", "b2", "b1"], "in order, each once"


async def test_all_reaches_every_other_agent_seen_in_the_last_fifteen_minutes(store, clock):
    async with store:
        await register(store, "old")
        clock.advance(15 * 60 + 1)
        await _team(store, "lead", "a", "b")
        sent = await send(store, "lead", "@all")
    assert sent.recipients == ["a", "b"]


async def test_an_unknown_recipient_or_a_group_with_no_member_is_not_found_and_sends_nothing(store, clock):
    async with store:
        await _team(store, "lead", "builder")
        async with refused(store, NotFound, "'bilder'", "known agents: builder, lead"):
            await send(store, "lead", ["builder", "bilder"])
        async with refused(store, NotFound, "@testers"):
            await send(store, "lead", "@testers")
        clock.advance(15 * 60 + 1)
        async with refused(store, NotFound, "@all has no member"):
            await send(store, "lead", ["builder", "@all"])


async def test_the_same_idempotency_key_from_the_same_sender_returns_the_first_message_and_sends_nothing(store):
    async with store:
        await _team(store, "a", "b", "c")
        first = await send(store, "a", "b", "once", idempotency_key="job-7")
        before = await view(store)
        again = await send(store, "a", "b", "once", idempotency_key="job-7")
        after = await view(store)
        other_sender = await send(store, "c", "b", "mine", idempotency_key="job-7")
        polled = await lease(store, "b")
    assert (again.message_id, again.thread_id, again.recipients, again.duplicate) == (
        first.message_id, first.thread_id, ["b"], True,
    )  # fmt: skip
    assert after["threads"] == before["threads"] and after["inboxes"] == before["inboxes"]
    assert other_sender.message_id != first.message_id
    assert bodies(polled) == ["once", "mine"]


async def test_reply_to_joins_the_original_thread_and_goes_back_to_its_sender(store):
    async with store:
        await _team(store, "lead", "w")
        question = await send(store, "lead", "w", "status?", kind="question", thread_id="auth")
        answer = await send(store, "w", None, "green", kind="answer", reply_to=question.message_id)
        [reply] = (await lease(store, "lead")).messages
        async with refused(store, Invalid, "'auth'"):
            await send(store, "w", None, "x", reply_to=question.message_id, thread_id="elsewhere")
        async with refused(store, NotFound, "'m999'"):
            await send(store, "w", None, "x", reply_to="m999")
        async with refused(store, Invalid):
            await send(store, "w", None, "nobody to send to")
        thread = await store.thread(None, "auth", 100)
    assert (answer.thread_id, answer.recipients) == ("auth", ["lead"])
    assert (reply.reply_to, reply.thread_id, reply.from_) == (question.message_id, "auth", "w")
    assert [m.body for m in thread.messages] == ["status?", "green"]


# --- lease, ack, nack -------------------------------------------------------------------------


async def test_lease_hands_out_the_highest_priority_first_then_the_oldest(store):
    async with store:
        await _team(store, "a", "b")
        for body, priority in [("n1", "normal"), ("l1", "low"), ("u1", "urgent"), ("n2", "normal"), ("h1", "high")]:
            await send(store, "a", "b", body, priority=priority)
        first = await lease(store, "b", limit=2)
        rest = await lease(store, "b", limit=10)
    assert bodies(first) == ["u1", "h1"] and bodies(rest) == ["n1", "n2", "l1"]
    assert [m.priority for m in rest.messages] == ["normal", "normal", "low"]


async def test_lease_filters_by_kind_and_thread(store):
    async with store:
        await _team(store, "a", "b")
        await send(store, "a", "b", "q", kind="question")
        await send(store, "a", "b", "d", kind="dispatch", thread_id="auth")
        await send(store, "a", "b", "t", thread_id="auth")
        dispatches = await lease(store, "b", kinds=["dispatch", "answer"])
        in_auth = await lease(store, "b", thread_id="auth")
        rest = await lease(store, "b")
    assert (bodies(dispatches), bodies(in_auth), bodies(rest)) == (["d"], ["t"], ["q"])


async def test_a_leased_delivery_comes_back_only_when_its_lease_lapses_with_the_next_attempt_and_a_new_receipt(
    store, clock
):
    async with store:
        await _team(store, "a", "b")
        sent = await send(store, "a", "b")
        [first] = (await lease(store, "b", lease_seconds=60)).messages
        clock.advance(59.999)
        assert (await lease(store, "b")).messages == []
        clock.advance(0.001)
        [again] = (await lease(store, "b")).messages
    assert (first.message_id, first.attempt) == (sent.message_id, 1)
    assert (again.message_id, again.attempt) == (sent.message_id, 2)
    assert again.receipt != first.receipt and again.lease_expires_at > first.lease_expires_at


async def test_only_the_current_receipt_of_the_callers_own_live_lease_acks_and_a_bad_one_acks_nothing(store, clock):
    async with store:
        await _team(store, "a", "b", "c")
        await send(store, "a", ["b", "c"])
        await send(store, "a", "b")
        mine = (await lease(store, "b", limit=1, lease_seconds=10)).messages[0].receipt
        theirs = _receipt(await lease(store, "c"))
        async with refused(store, NotOwner, "'c'"):
            await store.ack("b", [mine, theirs])
        async with refused(store, NotFound):
            await store.ack("b", [mine, "r999.abc"])
        async with refused(store, NotFound):
            await store.ack("b", ["not a receipt"])
        async with refused(store, LeaseExpired):
            await store.ack("b", [mine, mine[:-2] + "zz"])  # the right delivery, a forged receipt
        clock.advance(10)
        async with refused(store, LeaseExpired):
            await store.ack("b", [mine])  # lapsed
        async with refused(store, LeaseExpired):
            await store.nack("b", mine, None, 0)
        fresh = (await lease(store, "b", limit=1)).messages[0]
        async with refused(store, LeaseExpired):
            await store.ack("b", [mine])  # re-leased: the old receipt is dead for good
        acked = await store.ack("b", [fresh.receipt, fresh.receipt])
    assert fresh.attempt == 2 and acked.acked == 1


async def test_an_acked_delivery_never_comes_back_and_acking_it_again_is_harmless(store, clock):
    async with store:
        await _team(store, "a", "b")
        sent = await send(store, "a", "b")
        receipt = _receipt(await lease(store, "b", lease_seconds=10))
        assert (await store.ack("b", [receipt])).acked == 1
        assert (await store.ack("b", [receipt])).acked == 1
        async with refused(store, LeaseExpired, "acked"):
            await store.nack("b", receipt, "too late", 0)
        clock.advance(86_400)
        assert (await lease(store, "b")).messages == []
        thread = await store.thread(None, sent.thread_id, 10)
        acks = await events(store, "ack")
    assert [(d.state, d.attempt) for d in thread.messages[0].deliveries] == [("acked", 1)]
    assert len(acks) == 1, "the second ack changed nothing"


async def test_nack_queues_the_delivery_again_after_retry_after_with_the_next_attempt(store, clock):
    async with store:
        await _team(store, "a", "b")
        await send(store, "a", "b")
        receipt = _receipt(await lease(store, "b"))
        nacked = await store.nack("b", receipt, "flaky", 30)
        assert (await lease(store, "b")).messages == []
        clock.advance(30)
        [again] = (await lease(store, "b")).messages
        async with refused(store, LeaseExpired):
            await store.ack("b", [receipt])
    assert (nacked.state, nacked.attempt, again.attempt) == ("queued", 1, 2)


async def test_the_last_attempt_goes_dead_whether_nacked_or_lapsed_and_the_sender_is_told_in_the_thread(store, clock):
    async with store:
        await _team(store, "a", "b")
        by_nack = await send(store, "a", "b", "one", subject="job", max_attempts=2)
        by_lapse = await send(store, "a", "b", "two", max_attempts=1)
        await lease(store, "b", lease_seconds=5)  # attempt 1 of both
        clock.advance(5)
        [last] = (await lease(store, "b")).messages  # "one", attempt 2; "two" is dead: its one attempt lapsed
        dead = await store.nack("b", last.receipt, "broken", 0)
        clock.advance(3600)
        left = await lease(store, "b")
        notices = (await lease(store, "a")).messages
        threads = [await store.thread(None, s.thread_id, 10) for s in (by_nack, by_lapse)]
    assert (last.body, last.attempt, dead.state, dead.attempt) == ("one", 2, "dead", 2)
    assert left.messages == []
    assert sorted((n.payload["message_id"], n.payload["state"], n.payload["attempts"]) for n in notices) == sorted(
        [(by_nack.message_id, "dead", 2), (by_lapse.message_id, "dead", 1)]
    )
    for notice in notices:
        assert (notice.kind, notice.from_, notice.payload["recipient"]) == ("delivery_failed", "teamroom", "b")
        assert notice.reply_to == notice.payload["message_id"] == notice.thread_id
    assert [t.messages[0].deliveries[0].state for t in threads] == ["dead", "dead"]


async def test_a_delivery_past_its_ttl_expires_at_the_next_write_of_anyone_and_the_sender_is_told(store, clock):
    async with store:
        await _team(store, "a", "b", "c")
        sent = await send(store, "a", "b", ttl_seconds=60)
        leased = await send(store, "a", "b", ttl_seconds=60)
        await lease(store, "b", limit=1, lease_seconds=30)  # sent is leased, never acked, and its lease lapses
        clock.advance(61)
        await store.heartbeat("c", None, None, None)  # b never polls again
        thread = await store.thread(None, sent.thread_id, 10)
        other = await store.thread(None, leased.thread_id, 10)
        notices = (await lease(store, "a")).messages
        left = await lease(store, "b")
    assert [(d.state, d.attempt) for d in thread.messages[0].deliveries] == [("expired", 1)]
    assert [(d.state, d.attempt) for d in other.messages[0].deliveries] == [("expired", 0)]
    assert sorted(n.payload["state"] for n in notices) == ["expired", "expired"] and left.messages == []


async def test_heartbeat_renews_every_live_lease_by_its_own_original_duration(store, clock):
    async with store:
        await _team(store, "a", "b")
        for body in ("short", "long", "waiting"):
            await send(store, "a", "b", body)
        short = _receipt(await lease(store, "b", limit=1, lease_seconds=60))
        long = _receipt(await lease(store, "b", limit=1, lease_seconds=600))
        clock.advance(50)
        beat = await store.heartbeat("b", "working", "x", None)
        clock.advance(50)  # short: 40 s past its first deadline, inside the renewed one
        short_acked = await store.ack("b", [short])
        clock.advance(500)  # long: past 600 s from its lease, inside 600 s from the heartbeat
        long_acked = await store.ack("b", [long])
    assert (beat.leases_renewed, beat.unread) == (2, 1)
    assert short_acked.acked == long_acked.acked == 1


async def test_no_delivery_is_leased_to_two_callers_at_once_even_through_two_clients(store, make_store):
    async with store, make_store() as other:
        await _team(store, "lead", "w")
        for i in range(30):
            await send(store, "lead", "w", f"job {i}")
        results = await asyncio.gather(*(lease(s, "w", limit=3) for _ in range(10) for s in (store, other)))
        leased = [m.message_id for result in results for m in result.messages]
    assert len(leased) == len(set(leased)) == 30


# --- reading without leasing ------------------------------------------------------------------


async def test_next_ready_in_says_when_a_delivery_can_be_leased_and_changes_nothing(store, clock):
    async with store:
        await _team(store, "a", "b")
        assert await store.next_ready_in("b", None, None) is None
        await send(store, "a", "b", kind="question")
        before = await view(store)
        ready = await store.next_ready_in("b", None, None)
        not_that_kind = await store.next_ready_in("b", ["dispatch"], None)
        not_that_thread = await store.next_ready_in("b", None, "elsewhere")
        assert await view(store) == before
        await lease(store, "b", lease_seconds=40)
        leased = await store.next_ready_in("b", None, None)
        clock.advance(40)
        lapsed = await store.next_ready_in("b", None, None)
    assert (ready, not_that_kind, not_that_thread, leased, lapsed) == (0, None, None, 40, 0)


async def test_the_inbox_shows_what_waits_without_leasing_it(store, clock):
    async with store:
        await _team(store, "a", "b")
        await send(store, "a", "b", "low", priority="low")
        await send(store, "a", "b", "urgent", priority="urgent")
        before = await view(store)
        inbox = await store.inbox("b", 10)
        assert await view(store) == before
        await lease(store, "b", limit=1, lease_seconds=30)
        while_leased = await store.inbox("b", 10)
        clock.advance(30)
        lapsed = await store.inbox("b", 10)
    assert [(m.body, m.state, m.attempt) for m in inbox.messages] == [("urgent", "queued", 0), ("low", "queued", 0)]
    assert [(m.body, m.state) for m in while_leased.messages] == [("urgent", "leased"), ("low", "queued")]
    assert [(m.body, m.state, m.attempt) for m in lapsed.messages] == [("urgent", "queued", 1), ("low", "queued", 0)]


async def test_a_thread_lists_its_messages_in_the_order_sent_with_where_each_delivery_stands(store, clock):
    async with store:
        await _team(store, "a", "b", "c")
        first = await send(store, "a", ["b", "c"], "one")
        await send(store, "b", "a", "two", thread_id=first.thread_id)
        await send(store, "a", "b", "elsewhere")
        receipt = _receipt(await lease(store, "c", lease_seconds=10))
        await store.ack("c", [receipt])
        await lease(store, "b", limit=1, lease_seconds=10)
        thread = await store.thread(None, first.thread_id, 100)
        page = await store.thread("a", first.thread_id, 1)
        async with refused(store, NotFound, "'t-none'"):
            await store.thread(None, "t-none", 100)
    assert [(m.from_, m.body) for m in thread.messages] == [("a", "one"), ("b", "two")]
    assert [(d.to, d.state, d.attempt) for d in thread.messages[0].deliveries] == [
        ("b", "leased", 1), ("c", "acked", 1),
    ]  # fmt: skip
    assert [m.body for m in page.messages] == ["one"]


# --- the CLI's verbs: ack then lease, sending on behalf ---------------------------------------


async def test_ack_then_lease_acks_and_leases_in_one_transaction_and_a_refused_receipt_does_neither(store):
    async with store:
        await _team(store, "a", "b")
        one, two, _ = [await send(store, "a", "b", body) for body in ("one", "two", "three")]
        first = _receipt(await lease(store, "b", limit=1))
        async with refused(store, NotFound):
            await store.ack_then_lease("b", [first, "r999.x"], 1, 300, None, None)
        acked, polled = await store.ack_then_lease("b", [first], 1, 300, None, None)
        just_ack = await store.ack_then_lease("b", [polled.messages[0].receipt], 0, 300, None, None)
        log = await events(store, agent="b")
    assert (acked, bodies(polled)) == (1, ["two"])
    assert (just_ack[0], just_ack[1].messages) == (1, [])
    [ack] = [e for e in log if (e.kind, e.subject) == ("ack", one.message_id)]
    [leased] = [e for e in log if (e.kind, e.subject) == ("lease", two.message_id)]
    assert leased.id == ack.id + 1 and leased.at == ack.at, "one transaction: next in the log, at the same time"


async def test_acting_for_an_agent_leaves_its_liveness_alone_and_the_log_names_who_acted(store, clock):
    async with store:
        await _team(store, "a", "b")
        clock.advance(600)
        await register(store, "human")
        sent = await store.send_on_behalf(
            "human",
            "a",
            ["b"],
            "from the terminal",
            subject=None,
            kind="text",
            payload=None,
            priority=1,
            thread_id=None,
            reply_to=None,
            ttl_seconds=None,
            max_attempts=5,
            idempotency_key=None,
        )
        await send(store, "b", "a", "reply")
        acked, polled = await store.ack_then_lease("a", [], 5, 300, None, None, by="human")
        seen = {e.name: e.liveness for e in (await store.agents(None, None, None, True)).agents}
        log = [(e.agent, e.kind, (e.data or {}).get("by")) for e in await events(store, agent="a")]
        async with refused(store, NotFound, "'ghost'"):
            await store.ack_then_lease("ghost", [], 5, 300, None, None, by="human")
        async with refused(store, NotFound, "'ghost'"):
            await store.send_on_behalf(
                "human",
                "ghost",
                ["b"],
                "x",
                subject=None,
                kind="text",
                payload=None,
                priority=1,
                thread_id=None,
                reply_to=None,
                ttl_seconds=None,
                max_attempts=5,
                idempotency_key=None,
            )
    assert sent.recipients == ["b"] and (acked, bodies(polled)) == (0, ["reply"])
    assert seen["a"] == "stale", "a human acting for a said nothing about whether a is alive"
    assert ("a", "send", "human") in log and ("a", "lease", "human") in log

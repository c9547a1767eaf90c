"""Messaging semantics through the in-process MCP client, on a real SQLite file, with a manual clock."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ToolFailed, in_process

pytestmark = pytest.mark.anyio


async def _team(call, *names_roles):
    for name, role in names_roles:
        await call("register", agent=name, role=role)


async def test_a_dispatch_to_a_role_gives_each_member_its_own_delivery(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("lead", "lead"), ("b1", "builder"), ("b2", "builder"), ("r1", "reviewer"))
        sent = await call("send", agent="lead", to="@builders", body="build it", kind="dispatch")
        assert sent["recipients"] == ["b1", "b2"]
        for worker in ("b1", "b2"):
            got = (await call("poll", agent=worker))["messages"]
            assert [(m["message_id"], m["from"], m["kind"], m["attempt"]) for m in got] == [
                (sent["message_id"], "lead", "dispatch", 1)
            ]
        assert (await call("poll", agent="r1"))["messages"] == []


async def test_all_reaches_every_other_agent_that_is_not_offline(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("old", None))
        clock.advance(16 * 60)
        await _team(call, ("lead", "lead"), ("a", None), ("b", None))
        sent = await call("send", agent="lead", to="@all", body="hello")
        assert sent["recipients"] == ["a", "b"]


async def test_an_unknown_recipient_is_not_found_and_nothing_is_sent(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("lead", "lead"), ("builder", "builder"))
        with pytest.raises(ToolFailed) as err:
            await call("send", agent="lead", to=["builder", "bilder"], body="x")
        assert err.value.code == "not_found"
        assert "bilder" in err.value.text and "known agents: builder, lead" in err.value.text
        with pytest.raises(ToolFailed) as err:
            await call("send", agent="lead", to="@testers", body="x")
        assert err.value.code == "not_found"
        assert (await call("poll", agent="builder"))["messages"] == []


async def test_poll_hands_out_highest_priority_first_then_oldest(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        for body, priority in [("n1", "normal"), ("l1", "low"), ("u1", "urgent"), ("n2", "normal"), ("h1", "high")]:
            await call("send", agent="a", to="b", body=body, priority=priority)
        got = (await call("poll", agent="b", limit=10))["messages"]
        assert [m["body"] for m in got] == ["u1", "h1", "n1", "n2", "l1"]


async def test_a_leased_message_is_not_handed_out_again_until_its_lease_expires(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        await call("send", agent="a", to="b", body="once")
        first = (await call("poll", agent="b", lease_seconds=60))["messages"]
        assert len(first) == 1
        assert (await call("poll", agent="b"))["messages"] == []
        clock.advance(61)
        again = (await call("poll", agent="b"))["messages"]
        assert [(m["message_id"], m["attempt"]) for m in again] == [(first[0]["message_id"], 2)]
        assert again[0]["receipt"] != first[0]["receipt"]


async def test_an_expired_receipt_cannot_ack_after_the_message_was_re_leased(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        await call("send", agent="a", to="b", body="x")
        old = (await call("poll", agent="b", lease_seconds=10))["messages"][0]["receipt"]
        clock.advance(11)
        with pytest.raises(ToolFailed) as err:
            await call("ack", agent="b", receipts=[old])
        assert err.value.code == "lease_expired"
        new = (await call("poll", agent="b"))["messages"][0]["receipt"]
        with pytest.raises(ToolFailed) as err:
            await call("nack", agent="b", receipt=old)
        assert err.value.code == "lease_expired"
        assert (await call("ack", agent="b", receipts=[new]))["acked"] == 1


async def test_an_acked_delivery_never_comes_back_even_after_a_late_nack(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        await call("send", agent="a", to="b", body="x")
        receipt = (await call("poll", agent="b", lease_seconds=10))["messages"][0]["receipt"]
        assert (await call("ack", agent="b", receipts=[receipt]))["acked"] == 1
        assert (await call("ack", agent="b", receipts=[receipt]))["acked"] == 1  # a retried ack is harmless
        with pytest.raises(ToolFailed) as err:
            await call("nack", agent="b", receipt=receipt)
        assert err.value.code == "lease_expired"
        clock.advance(3600)
        assert (await call("poll", agent="b"))["messages"] == []


async def test_nack_redelivers_with_the_next_attempt_after_retry_after(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        await call("send", agent="a", to="b", body="x")
        receipt = (await call("poll", agent="b"))["messages"][0]["receipt"]
        assert await call("nack", agent="b", receipt=receipt, reason="flaky", retry_after_seconds=30) == {
            "state": "queued",
            "attempt": 1,
        }
        assert (await call("poll", agent="b"))["messages"] == []
        clock.advance(30)
        assert [m["attempt"] for m in (await call("poll", agent="b"))["messages"]] == [2]


async def test_a_delivery_goes_dead_after_max_attempts_and_the_sender_is_told(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        sent = await call("send", agent="a", to="b", body="x", subject="job", max_attempts=2)
        receipt = (await call("poll", agent="b", lease_seconds=5))["messages"][0]["receipt"]
        clock.advance(6)  # the first lease lapses: attempt 2 comes
        receipt = (await call("poll", agent="b"))["messages"][0]["receipt"]
        assert await call("nack", agent="b", receipt=receipt) == {"state": "dead", "attempt": 2}
        clock.advance(3600)
        assert (await call("poll", agent="b"))["messages"] == []
        notices = (await call("poll", agent="a"))["messages"]
        assert [(n["kind"], n["from"], n["payload"]["state"], n["payload"]["message_id"]) for n in notices] == [
            ("delivery_failed", "teamroom", "dead", sent["message_id"])
        ]
        assert notices[0]["thread_id"] == sent["thread_id"]


async def test_a_lease_that_lapses_on_the_last_attempt_goes_dead(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        await call("send", agent="a", to="b", body="x", max_attempts=1)
        await call("poll", agent="b", lease_seconds=5)
        clock.advance(6)
        assert (await call("poll", agent="b"))["messages"] == []
        notices = (await call("poll", agent="a"))["messages"]
        assert [n["payload"]["state"] for n in notices] == ["dead"]


async def test_a_message_past_its_ttl_expires_and_the_sender_is_told(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None), ("c", None))
        sent = await call("send", agent="a", to="b", body="x", ttl_seconds=60)
        clock.advance(61)
        await call("heartbeat", agent="c")  # any write sweeps, even when b never polls again
        thread = await call("thread", agent="a", thread_id=sent["thread_id"])
        assert thread["messages"][0]["deliveries"] == [{"to": "b", "state": "expired", "attempt": 0}]
        notices = (await call("poll", agent="a"))["messages"]
        assert [n["payload"]["state"] for n in notices] == ["expired"]
        assert (await call("poll", agent="b"))["messages"] == []


async def test_ack_is_all_or_nothing_and_refuses_another_agents_receipt(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None), ("c", None))
        await call("send", agent="a", to=["b", "c"], body="x")
        mine = (await call("poll", agent="b"))["messages"][0]["receipt"]
        theirs = (await call("poll", agent="c"))["messages"][0]["receipt"]
        with pytest.raises(ToolFailed) as err:
            await call("ack", agent="b", receipts=[mine, theirs])
        assert err.value.code == "not_owner"
        with pytest.raises(ToolFailed) as err:
            await call("ack", agent="b", receipts=[mine, "r999.abc"])
        assert err.value.code == "not_found"
        assert (await call("ack", agent="b", receipts=[mine]))["acked"] == 1  # still leased: nothing changed


@pytest.mark.parametrize("digit", ["\u0661", "\u00b2"])  # ARABIC-INDIC DIGIT ONE (int() reads it as 1); SUPERSCRIPT TWO
async def test_a_typed_id_or_receipt_with_a_digit_that_is_not_ascii_is_not_found(db_path, clock, digit):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        await call("send", agent="a", to="b", body="x")  # m1, its delivery r1
        receipt = (await call("poll", agent="b"))["messages"][0]["receipt"]
        await call("post_finding", agent="b", body="found")  # e1
        await call("handoff", agent="a", task="t", summary="s", next_step="n")  # h1
        typed = receipt.split(".", 1)[1]
        for tool, arguments in [
            ("send", {"agent": "a", "to": "b", "body": "y", "reply_to": f"m{digit}"}),
            ("post_finding", {"agent": "b", "body": "y", "supersedes": f"e{digit}"}),
            ("resume", {"agent": "a", "handoff_id": f"h{digit}"}),
            ("ack", {"agent": "b", "receipts": [f"r{digit}.{typed}"]}),
            ("nack", {"agent": "b", "receipt": f"r{digit}.{typed}"}),
        ]:
            with pytest.raises(ToolFailed) as err:
                await call(tool, **arguments)
            assert err.value.code == "not_found", (tool, err.value.text)
        assert (await call("ack", agent="b", receipts=[receipt]))["acked"] == 1  # nothing changed on the way


async def test_reply_to_joins_the_thread_and_goes_back_to_the_sender(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("lead", "lead"), ("w", "builder"))
        q = await call("send", agent="lead", to="w", body="status?", kind="question")
        got = (await call("poll", agent="w"))["messages"][0]
        a = await call("send", agent="w", to=None, reply_to=got["message_id"], body="green", kind="answer")
        assert a["thread_id"] == q["thread_id"] and a["recipients"] == ["lead"]
        reply = (await call("poll", agent="lead"))["messages"][0]
        assert (reply["reply_to"], reply["thread_id"]) == (q["message_id"], q["thread_id"])
        thread = await call("thread", agent="lead", thread_id=q["thread_id"])
        assert [m["body"] for m in thread["messages"]] == ["status?", "green"]
        assert thread["messages"][0]["deliveries"] == [{"to": "w", "state": "leased", "attempt": 1}]


async def test_the_same_idempotency_key_sends_once(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        first = await call("send", agent="a", to="b", body="x", idempotency_key="job-7")
        again = await call("send", agent="a", to="b", body="x", idempotency_key="job-7")
        assert again["message_id"] == first["message_id"] and again["duplicate"] is True
        assert len((await call("poll", agent="b", limit=10))["messages"]) == 1


async def test_heartbeat_renews_leases_by_their_original_duration(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        await call("send", agent="a", to="b", body="x")
        await call("send", agent="a", to="b", body="y")
        receipt = (await call("poll", agent="b", limit=1, lease_seconds=60))["messages"][0]["receipt"]
        clock.advance(50)
        beat = await call("heartbeat", agent="b", status="working", task="x")
        assert (beat["leases_renewed"], beat["unread"]) == (1, 1)
        clock.advance(50)  # past the first deadline, inside the renewed one
        assert (await call("ack", agent="b", receipts=[receipt]))["acked"] == 1


async def test_agents_shows_liveness_status_and_unread(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", "lead"), ("b", "builder"))
        await call("heartbeat", agent="b", status="working", task="auth")
        await call("send", agent="a", to="b", body="x")
        clock.advance(3 * 60)
        await call("heartbeat", agent="a")
        listed = {e["name"]: e for e in (await call("agents", agent="a"))["agents"]}
        assert (listed["a"]["liveness"], listed["b"]["liveness"]) == ("live", "stale")
        assert (listed["b"]["status"], listed["b"]["task"], listed["b"]["unread"]) == ("working", "auth", 1)
        clock.advance(15 * 60)
        await call("heartbeat", agent="a")
        assert [e["name"] for e in (await call("agents", agent="a"))["agents"]] == ["a"]
        everyone = (await call("agents", agent="a", include_offline=True))["agents"]
        assert {e["name"]: e["liveness"] for e in everyone} == {"a": "live", "b": "offline"}


async def test_register_again_updates_the_record(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="a", role="builder", capabilities=["py"])
        again = await call("register", agent="a", role="reviewer", description="reads diffs")
        assert again["agent"] == {"name": "a", "role": "reviewer", "capabilities": ["py"], "description": "reads diffs"}


async def test_poll_filters_by_kind_and_thread(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        await call("send", agent="a", to="b", body="q", kind="question")
        t = await call("send", agent="a", to="b", body="d", kind="dispatch", thread_id="auth")
        assert [m["body"] for m in (await call("poll", agent="b", kinds=["dispatch"]))["messages"]] == ["d"]
        assert (await call("poll", agent="b", thread_id=t["thread_id"]))["messages"] == []
        assert [m["body"] for m in (await call("poll", agent="b"))["messages"]] == ["q"]


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"to": "b", "body": ""}, "invalid"),
        ({"to": "b", "body": "x" * (64 * 1024 + 1)}, "too_large"),
        ({"to": "b", "body": "x", "payload": {"k": "v" * (64 * 1024)}}, "too_large"),
        ({"to": "b", "body": "x", "subject": "s" * 201}, "invalid"),
        ({"to": "b", "body": "x", "ttl_seconds": 0}, "invalid"),
        ({"to": "b", "body": "x", "max_attempts": 101}, "invalid"),
        ({"to": "b", "body": "x", "kind": "gossip"}, "invalid"),
        ({"to": "b c", "body": "x"}, "invalid"),
        ({"to": "b", "body": "x", "reply_to": "m999"}, "not_found"),
        ({"to": "b", "body": "x\x00y"}, "invalid"),
    ],
)
async def test_a_bad_send_is_refused_with_its_code_and_changes_nothing(db_path, clock, arguments, code):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        before = await call.resource("teamroom://events")
        with pytest.raises(ToolFailed) as err:
            await call("send", agent="a", **arguments)
        assert err.value.code == code, err.value.text
        assert (await call("poll", agent="b"))["messages"] == []
        after = json.loads(await call.resource("teamroom://events"))["events"]
        assert [e for e in after if e["id"] > json.loads(before)["events"][-1]["id"]] == []


async def test_a_missing_agent_name_says_how_to_fix_it(db_path, clock):
    async with in_process(db_path, clock) as call:
        with pytest.raises(ToolFailed) as err:
            await call("poll")
        assert err.value.code == "invalid" and "TEAMROOM_AGENT" in err.value.text
        with pytest.raises(ToolFailed) as err:
            await call("poll", agent="../etc")
        assert err.value.code == "invalid"


async def test_teamroom_agent_is_the_default_agent_for_every_tool(db_path, clock):
    async with in_process(db_path, clock, agent="builder-1") as call:
        await call("register", role="builder")
        assert [e["name"] for e in (await call("agents"))["agents"]] == ["builder-1"]


async def test_the_inbox_resource_shows_waiting_messages_without_leasing(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        await call("send", agent="a", to="b", body="peek", subject="s")
        inbox = json.loads(await call.resource("teamroom://inbox/b"))
        assert [(m["body"], m["state"]) for m in inbox["messages"]] == [("peek", "queued")]
        assert [m["attempt"] for m in (await call("poll", agent="b"))["messages"]] == [1]


async def test_every_state_change_is_in_the_events_log(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        sent = await call("send", agent="a", to="b", body="x")
        receipt = (await call("poll", agent="b"))["messages"][0]["receipt"]
        await call("nack", agent="b", receipt=receipt)
        receipt = (await call("poll", agent="b"))["messages"][0]["receipt"]
        await call("ack", agent="b", receipts=[receipt])
        events = json.loads(await call.resource("teamroom://events"))["events"]
        trail = [(e["agent"], e["kind"]) for e in events if e["subject"] == sent["message_id"]]
        assert trail == [("a", "send"), ("b", "lease"), ("b", "nack"), ("b", "lease"), ("b", "ack")]


async def test_agents_counts_unread_and_leased_deliveries_apart(db_path, clock):
    async with in_process(db_path, clock) as call:
        await _team(call, ("a", None), ("b", None))
        for body in ("x", "y", "z"):
            await call("send", agent="a", to="b", body=body)
        await call("poll", agent="b", limit=1, lease_seconds=30)
        entry = next(e for e in (await call("agents", agent="a"))["agents"] if e["name"] == "b")
        assert (entry["unread"], entry["leased"]) == (2, 1)
        clock.advance(31)  # a lapsed lease is unread again
        entry = next(e for e in (await call("agents", agent="a"))["agents"] if e["name"] == "b")
        assert (entry["unread"], entry["leased"]) == (3, 0)

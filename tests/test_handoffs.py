"""Handoffs and resume (in-process): records, the handoff message, who takes what, checkpoints."""

from __future__ import annotations

import json
import sqlite3

import pytest

from teamroom.store import SQLiteStore
from teamroom.tools import agents, handoffs
from tests.conftest import ToolFailed, in_process
from tests.test_hooks import ask, context

pytestmark = pytest.mark.anyio

RECORD = {
    "task": "fix-refresh",
    "summary": "expiry check added to refresh(); tests for it half written",
    "next_step": "finish test_refresh_rejects_expired_token in tests/test_auth.py",
    "done": ["expiry check in src/auth/refresh.py"],
    "remaining": ["tests", "changelog"],
    "blockers": ["CI is red on main"],
    "files": ["src/auth/refresh.py", "tests/test_auth.py"],
    "branch": "impl/refresh",
    "scope": "auth-review",
}


async def events_of(call, kind: str) -> list[dict]:
    events = json.loads(await call.resource("teamroom://events"))["events"]
    return [e for e in events if e["kind"] == kind]


async def test_a_handoff_to_an_agent_sends_it_a_handoff_message_carrying_the_record(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="reviewer", role="reviewer")
        sent = await call("handoff", agent="impl", to="reviewer", **RECORD)
        polled = await call("poll", agent="reviewer")
    assert sent["recipients"] == ["reviewer"]
    [message] = polled["messages"]
    assert (message["message_id"], message["kind"], message["from"]) == (sent["message_id"], "handoff", "impl")
    assert f"resume(handoff_id='{sent['handoff_id']}')" in message["body"]
    assert RECORD["next_step"] in message["body"]
    payload = message["payload"]
    assert payload["handoff_id"] == sent["handoff_id"]
    assert {k: payload[k] for k in RECORD} == RECORD
    assert (payload["from"], payload["to"], payload["taken_by"]) == ("impl", ["reviewer"], None)


async def test_resume_takes_the_newest_open_handoff_addressed_to_the_caller_and_logs_who_took_it(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="reviewer")
        older = await call("handoff", agent="impl", to="reviewer", **{**RECORD, "task": "older"})
        newer = await call("handoff", agent="audit", to="reviewer", **RECORD)
        await call("handoff", agent="audit", task="not-for-reviewer", summary="s", next_step="n")
        clock.advance(5)
        first = await call("resume", agent="reviewer")
        second = await call("resume", agent="reviewer")
        third = await call("resume", agent="reviewer")  # nothing open left: the newest it took
        taken = await events_of(call, "handoff_taken")
    assert first["handoff"]["handoff_id"] == newer["handoff_id"]
    assert (first["handoff"]["taken_by"], first["resumed_before"]) == ("reviewer", False)
    assert first["handoff"]["taken_at"] > first["handoff"]["created_at"]
    assert (second["handoff"]["handoff_id"], second["resumed_before"]) == (older["handoff_id"], False)
    assert (third["handoff"]["handoff_id"], third["resumed_before"]) == (newer["handoff_id"], True)
    assert [(e["agent"], e["subject"], e["data"]["from"]) for e in taken] == [
        ("reviewer", newer["handoff_id"], "audit"),
        ("reviewer", older["handoff_id"], "impl"),
    ]


async def test_a_handoff_to_a_role_is_taken_by_an_agent_of_that_role_even_one_registered_later(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="rev-1", role="reviewer")
        sent = await call("handoff", agent="impl", to="@reviewers", **RECORD)
        await call("register", agent="rev-2", role="reviewer")
        with pytest.raises(ToolFailed) as outsider:
            await call("resume", agent="builder")
        taken = await call("resume", agent="rev-2")
    assert sent["recipients"] == ["rev-1"]
    assert outsider.value.code == "not_found"
    assert (taken["handoff"]["handoff_id"], taken["handoff"]["taken_by"]) == (sent["handoff_id"], "rev-2")


async def test_an_agent_resuming_its_own_task_gets_its_own_last_checkpoint(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("handoff", agent="impl", **{**RECORD, "summary": "first checkpoint"})
        last = await call("handoff", agent="impl", **{**RECORD, "summary": "second checkpoint"})
        assert last["recipients"] == [] and last["message_id"] is None
    async with in_process(db_path, clock) as call:  # a new session after a context reset
        by_task = await call("resume", agent="impl", task=RECORD["task"])
        by_nothing = await call("resume", agent="impl")
    assert by_task["handoff"]["handoff_id"] == last["handoff_id"]
    assert by_task["handoff"]["summary"] == "second checkpoint"
    assert by_task["resumed_before"] is False
    assert by_nothing["handoff"]["handoff_id"] == last["handoff_id"]
    assert by_nothing["resumed_before"] is True


async def test_a_taker_that_resumes_again_gets_the_same_handoff_and_nothing_changes(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="reviewer")
        sent = await call("handoff", agent="impl", to="reviewer", **RECORD)
        first = await call("resume", agent="reviewer", handoff_id=sent["handoff_id"])
        clock.advance(60)
        again = await call("resume", agent="reviewer", task=RECORD["task"])
        taken = await events_of(call, "handoff_taken")
    assert again["resumed_before"] is True
    assert again["handoff"] == first["handoff"]
    assert len(taken) == 1


async def test_a_handoff_taken_by_one_agent_cannot_be_taken_by_another(db_path, clock):
    async with in_process(db_path, clock) as call:
        sent = await call("handoff", agent="impl", **RECORD)
        await call("resume", agent="rev-1", task=RECORD["task"])
        with pytest.raises(ToolFailed) as by_id:
            await call("resume", agent="rev-2", handoff_id=sent["handoff_id"])
        with pytest.raises(ToolFailed) as by_task:
            await call("resume", agent="rev-2", task=RECORD["task"])
    assert by_id.value.code == "conflict"
    assert "'rev-1'" in by_id.value.text
    assert by_task.value.code == "not_found"
    assert "'rev-1'" in by_task.value.text


async def test_resume_acknowledges_the_takers_handoff_message(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="reviewer")
        await call("register", agent="other")
        await call("handoff", agent="impl", to=["reviewer", "other"], **RECORD)
        [leased] = (await call("poll", agent="reviewer"))["messages"]
        await call("resume", agent="reviewer")
        late_ack = await call("ack", agent="reviewer", receipts=[leased["receipt"]])
        clock.advance(400)  # past the lease: an unacked message would come back
        reviewer_inbox = await call("poll", agent="reviewer")
        other_inbox = await call("poll", agent="other")
    assert late_ack["acked"] == 1
    assert reviewer_inbox["messages"] == []
    assert [m["kind"] for m in other_inbox["messages"]] == ["handoff"]  # theirs is untouched


async def test_after_handing_a_task_on_an_agent_does_not_get_its_older_records_back(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="next")
        await call("handoff", agent="impl", **{**RECORD, "summary": "checkpoint"})
        await call("resume", agent="impl")
        await call("handoff", agent="impl", to="next", **{**RECORD, "summary": "yours now"})
        await call("resume", agent="next")
        with pytest.raises(ToolFailed) as nothing:
            await call("resume", agent="impl")
    assert nothing.value.code == "not_found"


async def test_an_open_handoff_behind_more_than_500_newer_open_ones_is_still_shown_and_resumed(db_path, clock):
    """Every open handoff counts, however many others exist: no window of the newest few hides one."""
    store = SQLiteStore(db_path, clock=clock)
    await store.open()
    try:
        await agents.register(store, "reviewer", role="reviewer")
        sent = await handoffs.handoff(store, "impl", "review auth", "tests green", "read the diff", to="@reviewers")
        for i in range(501):  # other agents' checkpoints: open for good, since nobody resumes them
            await handoffs.handoff(store, f"worker-{i % 10}", f"task-{i}", "checkpoint", "go on")
        shown = context(ask(db_path, "SessionStart", agent="reviewer"))
        taken = await handoffs.resume(store, "reviewer")
    finally:
        await store.close()
    assert f"resume(handoff_id={sent.handoff_id!r})" in shown and "task-" not in shown
    assert taken.handoff.handoff_id == sent.handoff_id


async def test_resume_with_nothing_to_take_is_not_found(db_path, clock):
    async with in_process(db_path, clock) as call:
        failures = []
        for arguments in ({}, {"task": "nope"}, {"handoff_id": "h99"}, {"handoff_id": "x"}):
            with pytest.raises(ToolFailed) as refused:
                await call("resume", agent="impl", **arguments)
            failures.append(refused.value.code)
    assert failures == ["not_found"] * 4


async def test_a_handoff_to_an_unknown_agent_is_not_found_and_stores_nothing(db_path, clock):
    async with in_process(db_path, clock) as call:
        with pytest.raises(ToolFailed) as refused:
            await call("handoff", agent="impl", to="reviewr", **RECORD)
        with pytest.raises(ToolFailed) as nothing_stored:
            await call("resume", agent="impl", task=RECORD["task"])
    assert refused.value.code == "not_found"
    assert "known agents" in refused.value.text
    assert nothing_stored.value.code == "not_found"


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"summary": ""}, "invalid"),
        ({"next_step": "   "}, "invalid"),
        ({"task": ""}, "invalid"),
        ({"scope": "a/b"}, "invalid"),
        ({"files": ["f"] * 101}, "invalid"),
        ({"summary": "s" * 40_000, "next_step": "n" * 40_000}, "too_large"),
    ],
)
async def test_a_bad_handoff_is_refused(db_path, clock, arguments, code):
    async with in_process(db_path, clock) as call:
        with pytest.raises(ToolFailed) as refused:
            await call("handoff", agent="impl", **{**RECORD, **arguments})
    assert refused.value.code == code


async def test_a_handoff_record_is_never_edited_or_deleted_in_the_store(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("handoff", agent="impl", **RECORD)
        await call("resume", agent="impl")
    conn = sqlite3.connect(db_path)
    try:
        for statement in (
            "UPDATE handoffs SET summary = 'rewritten'",
            "UPDATE handoffs SET taken_by = 'thief'",
            "DELETE FROM handoffs",
        ):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(statement)
    finally:
        conn.close()

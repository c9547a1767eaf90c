"""The board and handoffs across real ``teamroom serve`` processes: the user story, and crashes.

The processes that are not killed are the session's shared servers (``team``).
"""

from __future__ import annotations

import json

import pytest
from examples.workflow_story import run_story

from tests.procs import served

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


async def test_the_workflow_story_ends_with_the_lead_reading_the_decisions_and_every_agents_findings(db_path):
    story = await run_story(db_path)

    print("\ntool calls per agent in the workflow story:")
    for name, calls in story.calls.items():
        print(f"  {name:<6} {len(calls):>3}  {', '.join(calls)}")
    entries = story.final["entries"]
    decisions = [e for e in entries if e["kind"] == "decision"]
    findings = [e for e in entries if e["kind"] == "finding"]
    assert {e["author"] for e in decisions} == {"lead"} and len(decisions) == 2
    assert {e["author"] for e in findings} == {"audit", "impl", "mcp"}
    # audit's cookie finding was superseded by its revision: only the revision is shown.
    cookie = [e for e in findings if "cookie" in (e["title"] or e["body"]).lower()]
    assert [e["supersedes"] is not None for e in cookie] == [True]
    # The final decision cites the findings it accepts.
    assert set(decisions[-1]["refs"]) == {e["id"] for e in findings if e["author"] in ("audit", "impl")}
    # Every worker saw the lead's plan on its first read.
    assert all(any(body.startswith("audit: security bugs") for body in seen) for seen in story.first_reads.values())
    # Workers need no retries; the lead polls once per batch of messages (at most one batch per message).
    assert {n: len(c) for n, c in story.calls.items() if n != "lead"} == {"audit": 10, "impl": 9, "mcp": 8}
    polls = story.calls["lead"].count("poll")
    assert 2 <= polls <= 4
    assert len(story.calls["lead"]) == 7 + 2 * polls


async def test_a_checkpoint_is_resumed_from_a_new_process_after_its_writer_was_killed(db_path):
    async with served(db_path, agent="impl") as first:
        written = await first(
            "handoff", task="fix-refresh", summary="expiry check in; test half written",
            next_step="finish tests/test_auth.py::test_expired", files=["src/auth/refresh.py"], branch="impl/refresh",
        )  # fmt: skip
        first.kill()
    async with served(db_path, agent="impl") as second:
        resumed = await second("resume", task="fix-refresh")
        events = json.loads(await second.resource("teamroom://events"))["events"]
    record = resumed["handoff"]
    assert (record["handoff_id"], record["from"], record["taken_by"]) == (written["handoff_id"], "impl", "impl")
    assert (record["next_step"], record["branch"]) == ("finish tests/test_auth.py::test_expired", "impl/refresh")
    assert [e["subject"] for e in events if e["kind"] == "handoff_taken"] == [written["handoff_id"]]


async def test_a_taker_killed_after_resuming_gets_the_same_handoff_back_in_a_new_process(team):
    [lead] = team.acting("lead")
    impl = team.name("impl")
    async with served(team.db, agent=impl) as first:
        await first("register", role="implementer")
        sent = await lead("handoff", task="fix-refresh", summary="planned", next_step="start", to=impl)
        taken = await first("resume")
        first.kill()
    async with served(team.db, agent=impl) as second:
        again = await second("resume")
    assert taken["handoff"]["handoff_id"] == sent["handoff_id"] == again["handoff"]["handoff_id"]
    assert (taken["resumed_before"], again["resumed_before"]) == (False, True)


async def test_locks_handed_off_with_transfer_cannot_be_claimed_by_a_third_process_before_the_taker_resumes(team):
    rev, intruder = team.acting("rev", "intruder")
    reviewers, auth = team.name("reviewer"), team.path("src/auth/**")
    await rev("register", role=reviewers)
    async with served(team.db, agent=team.name("impl")) as impl:
        claimed = await impl("claim_lock", resources=[auth], reason="fixing refresh")
        sent = await impl(
            "handoff", task="fix-refresh", summary="fix in, tests to write", next_step="write the tests",
            to=f"@{reviewers}s", transfer_locks=True,
        )  # fmt: skip
        impl.kill()  # the writer is gone: the locks stay held for the handoff, not lost with it
    in_between = await intruder("claim_lock", resources=[team.path("src/auth/login.py")])
    taken = await rev("resume")
    after = await intruder("claim_lock", resources=[team.path("src/auth/login.py")])
    assert not in_between["granted"]
    assert [c["held_by"] for c in in_between["conflicts"]] == [f"handoff:{sent['handoff_id']}"]
    assert [lock["resource"] for lock in taken["locks"]] == [auth]
    assert taken["locks"][0]["token"] > claimed["locks"][0]["token"], "a new, greater token fences off the writer"
    assert not after["granted"]
    assert [c["held_by"] for c in after["conflicts"]] == [rev.agent]

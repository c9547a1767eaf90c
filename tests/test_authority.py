"""No agent can act for another: what one agent holds or owns, another cannot use, release or replace.

Each refusal carries its SPEC code and leaves every table but the audit log as it was; the owner
can still do what the intruder could not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ToolFailed, in_process
from tests.storeview import diff, snapshot, tool_names

pytestmark = pytest.mark.anyio


async def refused(call, db: Path, tool: str, codes: tuple[str, ...], **args) -> str:
    """Call ``tool`` expecting a refusal with one of ``codes`` that changes nothing; the error text."""
    before = snapshot(db)
    with pytest.raises(ToolFailed) as failure:
        await call(tool, **args)
    assert failure.value.code in codes, failure.value.text
    after = snapshot(db)
    assert before == after, f"the refused {tool} changed {diff(before, after)}"
    return failure.value.text


TOOLS = tool_names()
needs_locks = pytest.mark.skipif("claim_lock" not in TOOLS, reason="locks are not on this branch yet (issue 3)")
needs_board = pytest.mark.skipif("post_finding" not in TOOLS, reason="the board is not on this branch yet (issue 4)")


async def leased(call, owner: str) -> dict:
    await call("register", agent=owner)
    await call("register", agent="intruder")
    await call("send", agent="lead", to=owner, body="yours")
    [message] = (await call("poll", agent=owner))["messages"]
    return message


async def test_acking_someone_elses_receipt_is_not_owner_and_the_owner_still_can(db_path, clock) -> None:
    async with in_process(db_path, clock) as call:
        message = await leased(call, "builder")

        text = await refused(call, db_path, "ack", ("not_owner",), agent="intruder", receipts=[message["receipt"]])

        assert "builder" in text
        assert (await call("ack", agent="builder", receipts=[message["receipt"]]))["acked"] == 1


async def test_acking_a_batch_with_one_foreign_receipt_acks_none_of_it(db_path, clock) -> None:
    async with in_process(db_path, clock) as call:
        theirs = await leased(call, "builder")
        await call("send", agent="lead", to="intruder", body="mine")
        [mine] = (await call("poll", agent="intruder"))["messages"]

        await refused(
            call, db_path, "ack", ("not_owner",), agent="intruder", receipts=[mine["receipt"], theirs["receipt"]]
        )

        assert (await call("ack", agent="intruder", receipts=[mine["receipt"]]))["acked"] == 1


async def test_nacking_someone_elses_receipt_is_not_owner_and_the_owner_still_can(db_path, clock) -> None:
    async with in_process(db_path, clock) as call:
        message = await leased(call, "builder")

        await refused(call, db_path, "nack", ("not_owner",), agent="intruder", receipt=message["receipt"])

        assert (await call("nack", agent="builder", receipt=message["receipt"]))["state"] == "queued"


async def test_a_receipt_from_an_earlier_lease_cannot_ack_the_current_one(db_path, clock) -> None:
    async with in_process(db_path, clock) as call:
        first = await leased(call, "builder")
        clock.advance(301)  # the lease lapses; the next poll leases the delivery again
        [second] = (await call("poll", agent="builder"))["messages"]

        await refused(call, db_path, "ack", ("lease_expired",), agent="builder", receipts=[first["receipt"]])

        assert second["attempt"] == 2
        assert (await call("ack", agent="builder", receipts=[second["receipt"]]))["acked"] == 1


@needs_locks
async def test_releasing_someone_elses_lock_is_not_owner(db_path, clock) -> None:
    async with in_process(db_path, clock) as call:
        claim = await call("claim_lock", agent="builder", resources=["src/app.py"])
        assert claim["granted"]

        await refused(call, db_path, "release_lock", ("not_owner",), agent="intruder", resources=["src/app.py"])

        assert (await call("release_lock", agent="builder", resources=["src/app.py"]))["released"] == ["src/app.py"]


@needs_board
async def test_superseding_someone_elses_entry_is_not_owner(db_path, clock) -> None:
    async with in_process(db_path, clock) as call:
        entry = await call("post_finding", agent="builder", body="the cache is stale")

        await refused(
            call, db_path, "post_finding", ("not_owner",), agent="intruder", body="no it is not",
            supersedes=entry["id"],
        )  # fmt: skip

        assert (await call("post_finding", agent="builder", body="it was the TTL", supersedes=entry["id"]))["id"]


@needs_board
async def test_posting_a_decision_in_someone_elses_scope_is_forbidden(db_path, clock) -> None:
    async with in_process(db_path, clock) as call:
        await call("post_finding", agent="lead", scope="release-2", body="release 2 starts")

        await refused(
            call, db_path, "post_finding", ("forbidden",), agent="intruder", scope="release-2",
            kind="decision", body="ship it",
        )  # fmt: skip

        assert (await call("post_finding", agent="lead", scope="release-2", kind="decision", body="ship it"))["id"]

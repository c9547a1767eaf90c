"""What the chaos, fuzz and fault tests found, each pinned by a small test of its own.

(The store that could not be opened and printed a traceback is pinned in test_faults.py.)
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import ToolFailed, in_process

pytestmark = pytest.mark.anyio


async def test_a_reply_may_leave_out_to_and_goes_to_the_original_sender(db_path, clock) -> None:
    """The input schema declared `to` required, so a reply without it was refused before SPEC's default applied."""
    async with in_process(db_path, clock) as call:
        await call("register", agent="lead")
        question = await call("send", agent="lead", to="lead", body="which port?", kind="question")

        reply = await call("send", agent="builder", reply_to=question["message_id"], body="8080", kind="answer")

        assert (reply["recipients"], reply["thread_id"]) == (["lead"], question["thread_id"])


async def test_a_heartbeat_that_renews_leases_is_in_the_audit_log(db_path, clock) -> None:
    """The chaos checker rebuilds every lease's deadline from the log; renewals left no trace."""
    async with in_process(db_path, clock) as call:
        await call("register", agent="builder")
        for body in ("one", "two"):
            await call("send", agent="lead", to="builder", body=body)
        await call("poll", agent="builder", lease_seconds=60)
        clock.advance(30)

        assert (await call("heartbeat", agent="builder"))["leases_renewed"] == 2
        assert (await call("heartbeat", agent="nobody-holds-anything"))["leases_renewed"] == 0

    events = await _events(db_path, "renew")
    assert [(e["agent"], e["data"]) for e in events] == [("builder", {"leases": 2})]


async def _events(db_path, kind: str) -> list[dict]:
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT agent, data FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    conn.close()
    return [{"agent": agent, "data": json.loads(data)} for agent, data in rows]


async def test_a_resource_with_a_lone_surrogate_is_invalid_not_an_internal_error(db_path, clock) -> None:
    """JSON can carry "\\ud800"; SQLite cannot store it, so the claim crashed with `internal`."""
    async with in_process(db_path, clock) as call:
        for tool, args in [
            ("claim_lock", {"resources": ["src/\ud800.py"]}),
            ("release_lock", {"resources": ["\udfff"]}),
            ("locks", {"resource": "a\ud800"}),
        ]:
            with pytest.raises(ToolFailed) as refused:
                await call(tool, agent="builder", **args)
            assert refused.value.code == "invalid", refused.value.text


async def test_the_board_resource_answers_a_bad_scope_with_its_code(db_path, clock) -> None:
    """The board's resource missed the wrapper that turns domain errors into coded resource errors."""
    async with in_process(db_path, clock) as call:
        with pytest.raises(MCPError) as refused:
            await call.resource("teamroom://board/a%2Fb")
    assert refused.value.error.message.startswith("invalid: scope 'a/b' contains '/'"), refused.value.error.message

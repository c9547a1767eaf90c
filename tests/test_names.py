"""Agent names are matched whole, and a misspelt parameter is refused (SPEC section 2)."""

from __future__ import annotations

import pytest

from teamroom.config import Settings
from teamroom.errors import Invalid
from teamroom.tools import _check
from tests.conftest import ToolFailed, in_process


def test_a_name_with_a_trailing_newline_is_not_a_valid_agent_name() -> None:
    with pytest.raises(Invalid):
        _check.agent_name("lead\n")
    assert _check.agent_name("lead") == "lead"


def test_teamroom_agent_with_a_trailing_newline_is_refused(tmp_path) -> None:
    with pytest.raises(Invalid):
        Settings.resolve(tmp_path / "db", environ={"TEAMROOM_AGENT": "lead\n"})
    assert Settings.resolve(tmp_path / "db", environ={"TEAMROOM_AGENT": "lead"}).default_agent == "lead"


@pytest.mark.anyio
async def test_a_misspelt_parameter_is_refused_and_changes_nothing(db_path) -> None:
    async with in_process(db_path) as call:
        await call("claim_lock", agent="a", resources=["src/a.py"])
        with pytest.raises(ToolFailed) as refused:
            await call("release_lock", agent="a", resource="src/a.py")
        assert refused.value.text.startswith("invalid: unknown parameter 'resource'; did you mean 'resources'?")
        assert [lock["resource"] for lock in (await call("locks", agent="a"))["locks"]] == ["src/a.py"]
        with pytest.raises(ToolFailed) as refused:
            await call("claim_lock", agent="a", resources=["src/b.py"], ttl=5)
        assert "unknown parameter 'ttl'" in refused.value.text
        assert [lock["resource"] for lock in (await call("locks", agent="a"))["locks"]] == ["src/a.py"]


@pytest.mark.anyio
async def test_input_schemas_say_no_other_parameters(db_path) -> None:
    async with in_process(db_path) as call:
        tools = (await call.client.list_tools()).tools
        assert tools and all(tool.input_schema.get("additionalProperties") is False for tool in tools)


@pytest.mark.anyio
async def test_no_agent_may_call_itself_teamroom(db_path) -> None:
    async with in_process(db_path) as call:
        with pytest.raises(ToolFailed) as refused:
            await call("register", agent="teamroom", role="lead")
        assert refused.value.code == "invalid"
        assert (await call("agents", agent="lead"))["agents"][0]["name"] == "lead"  # only lead was ever seen

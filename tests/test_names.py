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


LOOKALIKES = [
    ("builder ", "starts or ends with a space; pass 'builder'"),
    ("\u00a0builder", "starts or ends with a space; pass 'builder'"),
    ("builder\u200b", "an invisible character (U+200B)"),  # ZERO WIDTH SPACE
    ("buil\u200dder", "an invisible character (U+200D)"),  # ZERO WIDTH JOINER
    ("\u202eredliub", "an invisible character (U+202E)"),  # RIGHT-TO-LEFT OVERRIDE
    ("builder\u2066", "an invisible character (U+2066)"),  # LEFT-TO-RIGHT ISOLATE
    ("builder\u0085", "a control character (U+0085)"),  # NEXT LINE (C1)
    ("\u009b31mbuilder", "a control character (U+009B)"),  # CONTROL SEQUENCE INTRODUCER (C1)
    ("build\u2028er", "a line break (U+2028)"),  # LINE SEPARATOR
]


@pytest.mark.anyio
@pytest.mark.parametrize(("value", "words"), LOOKALIKES)
async def test_a_label_that_would_print_like_another_is_invalid_and_changes_nothing(db_path, value, words) -> None:
    async with in_process(db_path) as call:
        await call("register", agent="b", role="builder")
        await call("handoff", agent="b", task="t", summary="s", next_step="n")
        for tool, arguments in [
            ("register", {"agent": "c", "role": value}),
            ("register", {"agent": "c", "capabilities": ["python", value]}),
            ("agents", {"agent": "c", "role": value}),
            ("send", {"agent": "c", "to": "b", "body": "x", "idempotency_key": value}),
            ("send", {"agent": "c", "to": "b", "body": "x", "thread_id": value}),
            ("send", {"agent": "c", "to": "@" + value, "body": "x"}),
            ("post_finding", {"agent": "c", "body": "x", "scope": value}),
            ("post_finding", {"agent": "c", "body": "x", "tags": [value]}),
            ("read_board", {"agent": "c", "tags": [value]}),
            ("handoff", {"agent": "c", "task": "t", "summary": "s", "next_step": "n", "branch": value}),
            ("handoff", {"agent": "c", "task": value, "summary": "s", "next_step": "n"}),
        ]:
            with pytest.raises(ToolFailed) as refused:
                await call(tool, **arguments)
            assert refused.value.code == "invalid" and words in refused.value.text, (tool, refused.value.text)
        assert (await call("poll", agent="b"))["messages"] == []
        assert (await call("read_board", agent="b", since=0))["entries"] == []
        assert [a["name"] for a in (await call("agents", agent="b"))["agents"]] == ["b"]  # a bad call: nothing
        assert (await call("resume", agent="b", task="t"))["handoff"]["branch"] is None


@pytest.mark.anyio
async def test_labels_with_spaces_inside_and_letters_of_any_script_are_taken(db_path) -> None:
    async with in_process(db_path) as call:
        agent = (await call("register", agent="c", role="code reviewer", capabilities=["日本語", "café"]))["agent"]
        assert (agent["role"], agent["capabilities"]) == ("code reviewer", ["日本語", "café"])
        assert (await call("post_finding", agent="c", body="x", scope="release 2", tags=["ünïcode"]))["scope"] == (
            "release 2"
        )

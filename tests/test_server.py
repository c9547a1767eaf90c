"""What an agent sees of the server: the tool list, annotations and instructions."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from teamroom.config import Settings
from teamroom.server import build_server
from tests.conftest import ToolFailed, in_process

pytestmark = pytest.mark.anyio


async def _listed(db_path):
    async with Client(build_server(Settings(db_path=db_path))) as client:
        return (await client.list_tools()).tools, client.instructions


def _generated_titles(schema) -> list[str]:
    """Every ``title`` keyword in a JSON schema; a parameter named title (post_finding's) is not one."""
    if isinstance(schema, list):
        return [t for item in schema for t in _generated_titles(item)]
    if not isinstance(schema, dict):
        return []
    found = [schema["title"]] if isinstance(schema.get("title"), str) else []
    for key, value in schema.items():
        if key == "properties":
            found += [t for prop in value.values() for t in _generated_titles(prop)]
        elif key != "title":
            found += _generated_titles(value)
    return found


async def test_the_tool_list_carries_no_generated_titles_or_null_types(db_path):
    tools, _ = await _listed(db_path)
    text = json.dumps([t.input_schema for t in tools])
    assert _generated_titles([t.input_schema for t in tools]) == [] and '"null"' not in text
    send = next(t for t in tools if t.name == "send")
    assert send.input_schema["required"] == ["body"]
    assert send.input_schema["properties"]["thread_id"] == {"type": "string"}


async def test_an_explicit_null_for_an_optional_parameter_is_still_accepted(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="a", role=None)
        assert (await call("poll", agent="a", kinds=None, thread_id=None))["messages"] == []


async def test_the_text_null_or_true_for_a_string_parameter_stays_that_text(db_path, clock):
    """The SDK read every non-`str` string as JSON: "null" became None and fell back to the default."""
    async with in_process(db_path, clock, agent="lead") as call:
        await call("register", agent="null", role="null")  # was: registered 'lead', no role
        await call("register", agent="b")
        roles = {a["name"]: a["role"] for a in (await call("agents", agent="b"))["agents"]}
        assert roles == {"null": "null", "b": None}
        assert [a["name"] for a in (await call("agents", agent="b", role="null"))["agents"]] == ["null"]
        await call("send", agent="b", to="null", body="x", subject="null")  # was: to refused, no subject
        await call("send", agent="b", to="null", body="y", subject="true")  # was: to refused
        await call("send", agent="b", to="null", body="z", subject='["x"]')  # was: subject refused as a list
        got = (await call("poll", agent="null"))["messages"]
        assert [(m["body"], m["subject"]) for m in got] == [("x", "null"), ("y", "true"), ("z", '["x"]')]
        await call("post_finding", agent="b", body="by b")
        assert (await call("read_board", agent="b", author="null", since=0))["entries"] == []  # was: everyone's
        await call("claim_lock", agent="b", resources=["src/a.py"])
        assert (await call("locks", agent="b", holder="null"))["locks"] == []  # was: everyone's
        with pytest.raises(ToolFailed) as refused:
            await call("release_lock", agent="b", resources="null")  # was: released all of b's
        assert refused.value.code == "not_found"
        assert [lock["resource"] for lock in (await call("locks", agent="b"))["locks"]] == ["src/a.py"]
        for tool, arguments in [("poll", {"limit": "null"}), ("send", {"to": "b", "body": "x", "payload": "null"})]:
            with pytest.raises(ToolFailed) as refused:  # was: the default limit / no payload
                await call(tool, agent="null", **arguments)
            assert refused.value.code == "invalid", tool


async def test_a_list_or_an_object_sent_as_json_text_is_still_read_as_one(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="b")
        await call("register", agent="c")
        sent = await call("send", agent="a", to='["b", "c"]', body="x", payload='{"pr": 12}')
        assert sent["recipients"] == ["b", "c"]
        assert (await call("poll", agent="b"))["messages"][0]["payload"] == {"pr": 12}
        held = await call("claim_lock", agent="a", resources='["src/a.py", "docs/"]')
        assert [lock["resource"] for lock in held["locks"]] == ["src/a.py", "docs/**"]


async def test_every_tool_is_described_and_honestly_annotated(db_path):
    tools, instructions = await _listed(db_path)
    read_only = {t.name for t in tools if t.annotations.read_only_hint}
    assert {"agents", "thread"} <= read_only
    assert not read_only & {"send", "poll", "ack", "nack", "register", "heartbeat"}
    for tool in tools:
        assert tool.description and len(tool.description) < 300, tool.name
        assert "agent" in tool.input_schema["properties"], tool.name
    assert "poll" in instructions and "ack" in instructions


async def test_output_schemas_are_inlined_and_still_validate_every_result(db_path, clock):
    tools, _ = await _listed(db_path)
    def titles(node):
        if isinstance(node, dict):
            return isinstance(node.get("title"), str) + sum(titles(v) for v in node.values())
        return sum(titles(v) for v in node) if isinstance(node, list) else 0

    for tool in tools:
        assert "$ref" not in json.dumps(tool.output_schema) and titles(tool.output_schema) == 0, tool.name
    async with in_process(db_path, clock) as call:  # the SDK client validates each result against them
        await call("register", agent="a")
        await call("send", agent="a", to="a", body="x", payload={"k": [1, None]})
        assert (await call("poll", agent="a"))["messages"][0]["subject"] is None
        assert (await call("agents", agent="a"))["agents"][0]["status"] is None


TOOL_LIST_BUDGET = 12_000  # characters every agent carries in its context on every turn (issue 12)


async def test_the_tool_list_as_a_client_sends_it_stays_under_its_budget(db_path):
    tools, _ = await _listed(db_path)
    wire = json.dumps(
        [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in tools]
    )
    print(f"tools/list as sent to the model: {len(tools)} tools, {len(wire)} characters")
    assert len(wire) < TOOL_LIST_BUDGET, f"{len(wire)} characters: shorten descriptions before adding tools"


async def test_the_contract_document_names_every_tool_and_error_code(db_path):
    import inspect
    import re
    from pathlib import Path

    from teamroom import errors

    contract = (Path(__file__).resolve().parents[1] / "docs" / "CONTRACT.md").read_text()
    tools, _ = await _listed(db_path)
    for tool in tools:
        assert f"`{tool.name}`" in contract, f"docs/CONTRACT.md does not describe the tool {tool.name}"
        for param in tool.input_schema["properties"]:
            assert re.search(rf"`{param}[`?:]", contract), f"docs/CONTRACT.md does not name {tool.name}({param})"
    codes = {c.code for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.TeamroomError)}
    for code in codes - {"error"} | {"internal"}:
        assert f"`{code}`" in contract, f"docs/CONTRACT.md does not list the error code {code}"

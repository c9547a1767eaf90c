"""A real MCP client, the MCP Inspector in CLI mode, lists every tool and calls send and poll on ``teamroom serve``."""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
from mcp import Client

from teamroom.config import Settings
from teamroom.server import build_server
from teamroom.store import SQLiteStore
from teamroom.tools import agents as agent_tools
from tests.procs import serve_command

NPX = shutil.which("npx")
pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(NPX is None, reason="npx (Node.js) is not installed: the MCP Inspector runs on node"),
]
# With node 20, plain npx takes inspector 0.15, the last release for node < 22 (MCP-NOTES.md).
INSPECTOR = "@modelcontextprotocol/inspector"


def inspector(db: Path, method: str, *args: str) -> dict:
    command, serve_args = serve_command()
    done = subprocess.run(
        [
            NPX,
            "-y",
            "--prefer-offline",
            INSPECTOR,
            "--cli",
            command,
            *serve_args,
            "--db",
            str(db),
            "--method",
            method,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,  # the first run downloads the inspector
    )
    assert done.returncode == 0, f"inspector {method} failed: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def call(db: Path, tool: str, **arguments: str) -> dict:
    tool_args = [arg for name, value in arguments.items() for arg in ("--tool-arg", f"{name}={value}")]
    result = inspector(db, "tools/call", "--tool-name", tool, *tool_args)
    assert result["isError"] is False, result["content"]
    return result["structuredContent"]


def test_the_inspector_lists_every_tool_and_a_send_reaches_a_poll(db_path):
    async def known_recipient_and_every_tool() -> set[str]:
        store = SQLiteStore(db_path)
        await store.open()
        await agent_tools.register(store, "worker")
        await store.close()
        async with Client(build_server(Settings(db_path=db_path))) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    every_tool = anyio.run(known_recipient_and_every_tool)
    with ThreadPoolExecutor(2) as pool:  # each run spawns node and a server: two at a time halves the wait
        listing = pool.submit(inspector, db_path, "tools/list")
        sent = pool.submit(call, db_path, "send", agent="lead", to="worker", body="hello from the inspector")
        tools = {tool["name"]: tool for tool in listing.result()["tools"]}
        message_id = sent.result()["message_id"]
    assert {"send", "poll"} <= every_tool and set(tools) == every_tool
    assert all(tool.get("outputSchema") for tool in tools.values()), "every tool has an output schema"
    polled = call(db_path, "poll", agent="worker")
    assert [(m["message_id"], m["from"], m["body"]) for m in polled["messages"]] == [
        (message_id, "lead", "hello from the inspector")
    ]

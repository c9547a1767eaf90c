"""The hooks: what reaches an agent's context without it asking, and the stop it is asked to reconsider."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from teamroom import hooks
from teamroom.config import Settings
from teamroom.server import build_server
from teamroom.store import SQLiteStore
from teamroom.tools import agents as agent_tools
from teamroom.tools import messages as message_tools
from tests.conftest import Caller
from tests.procs import served


def hook_input(event: str, session: str | None = "session-1", **extra: object) -> str:
    data = {"hook_event_name": event, "cwd": "/", **extra}
    if session is not None:
        data["session_id"] = session
    return json.dumps(data)


def ask(db: Path, event: str, agent: str | None = "builder-1", client: str = "claude", **extra: object) -> dict | None:
    environ = {"TEAMROOM_DB": str(db)} | ({"TEAMROOM_AGENT": agent} if agent else {})
    answer = hooks.respond(client, hook_input(event, **extra), environ)
    return None if answer is None else json.loads(answer)


def context(answer: dict | None) -> str:
    assert answer is not None, "the hook said nothing"
    return answer["hookSpecificOutput"]["additionalContext"]


def act(db: Path, fn):
    """Run ``fn(store)`` against the store through the tool functions."""

    async def go():
        store = SQLiteStore(db)
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return anyio.run(go)


def team(db: Path) -> None:
    async def go(store):
        for name, role in (("lead", "lead"), ("builder-1", "builder"), ("builder-2", "builder")):
            await agent_tools.register(store, name, role=role)

    act(db, go)


def send(db: Path, to: str, subject: str, priority: str = "normal", sender: str = "lead") -> str:
    async def go(store):
        return (
            await message_tools.send(store, sender, to, f"body of {subject}", subject, priority=priority)
        ).message_id

    return act(db, go)


def test_session_start_lists_unread_messages_most_urgent_first(db_path):
    team(db_path)
    send(db_path, "builder-1", "tidy the docs", priority="low")
    send(db_path, "builder-1", "prod is down", priority="urgent")
    send(db_path, "builder-1", "review PR 12")
    text = context(ask(db_path, "SessionStart", source="startup"))
    assert text.startswith("teamroom, for agent builder-1:")
    assert "3 unread messages; poll" in text
    lines = [line for line in text.splitlines() if line.startswith("  - ")]
    assert lines[0].startswith('  - [urgent] lead: "prod is down"')
    assert [line.split('"')[1] for line in lines] == ["prod is down", "review PR 12", "tidy the docs"]


def test_user_prompt_submit_speaks_only_when_something_is_new(db_path):
    team(db_path)
    send(db_path, "builder-1", "first")
    assert "first" in context(ask(db_path, "SessionStart"))
    assert ask(db_path, "UserPromptSubmit") is None, "already told: no nagging"
    assert ask(db_path, "UserPromptSubmit") is None
    second = send(db_path, "builder-1", "second")
    text = context(ask(db_path, "UserPromptSubmit"))
    assert "2 unread messages" in text and f"{second} new)" in text
    assert ask(db_path, "UserPromptSubmit") is None


def test_a_new_context_is_told_everything_again(db_path):
    team(db_path)
    send(db_path, "builder-1", "still waiting")
    assert context(ask(db_path, "SessionStart"))
    assert ask(db_path, "UserPromptSubmit") is None
    assert "still waiting" in context(ask(db_path, "SessionStart", source="compact"))


def test_an_agent_with_nothing_waiting_hears_nothing(db_path):
    team(db_path)
    send(db_path, "builder-2", "not for builder-1")
    assert ask(db_path, "SessionStart") is None
    assert ask(db_path, "UserPromptSubmit") is None


def test_the_hook_knows_the_agent_from_the_session_it_registered_under(db_path):
    team(db_path)
    send(db_path, "builder-2", "for builder-2")

    async def register_through_a_session():
        server = build_server(Settings(db_path=db_path, session_id="claude-session-7"))
        from mcp import Client

        async with Client(server) as client:
            call = Caller(client)
            await call("register", agent="builder-2")
            await call("register", agent="helper-subagent")  # a subagent sharing the server: not the session's agent

    anyio.run(register_through_a_session)

    async def bindings(store):
        return (await message_tools.events(store, kinds=["session_bound"])).events

    assert [(e.agent, e.subject) for e in act(db_path, bindings)] == [("builder-2", "claude-session-7")], "audited"
    text = context(ask(db_path, "SessionStart", agent=None, session="claude-session-7"))
    assert text.startswith("teamroom, for agent builder-2:") and "for builder-2" in text
    assert ask(db_path, "SessionStart", agent=None, session="another-session") is None


@pytest.mark.anyio
@pytest.mark.processes
async def test_a_real_server_binds_claude_codes_session_id_and_the_real_hook_command_uses_it(db_path):
    async with served(db_path, env={"CLAUDE_CODE_SESSION_ID": "real-session"}) as call:
        await call("register", agent="builder-3")
        await call("register", agent="lead")
        await call("send", agent="lead", to="builder-3", body="hello", subject="ping")
    done = subprocess.run(
        [sys.executable, "-m", "teamroom", "hook", "claude"],
        input=hook_input("UserPromptSubmit", session="real-session"),
        capture_output=True,
        text=True,
        env={"TEAMROOM_DB": str(db_path), "PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    assert (done.returncode, done.stderr) == (0, "")
    answer = json.loads(done.stdout)
    assert answer["hookSpecificOutput"]["hookEventName"] == "UserPromptSubmit"
    assert 'lead: "ping"' in answer["hookSpecificOutput"]["additionalContext"]


def test_stop_blocks_once_while_the_agent_holds_an_unacked_lease(db_path):
    team(db_path)
    send(db_path, "builder-1", "do the thing")

    async def lease(store):
        return (await message_tools.poll(store, "builder-1")).messages[0].receipt

    receipt = act(db_path, lease)
    answer = ask(db_path, "Stop", stop_hook_active=False)
    assert answer is not None and answer["decision"] == "block"
    assert "1 leased message" in answer["reason"] and "m1 from lead" in answer["reason"]
    assert ask(db_path, "Stop", stop_hook_active=True) is None, "the agent went on once already"
    assert ask(db_path, "Stop", stop_hook_active=False) is None, "the same holdings do not block twice"

    async def ack(store):
        await message_tools.ack(store, "builder-1", [receipt])

    act(db_path, ack)
    assert ask(db_path, "Stop", stop_hook_active=False) is None
    send(db_path, "builder-1", "another")
    act(db_path, lease)
    assert ask(db_path, "Stop", stop_hook_active=False)["decision"] == "block", "new holdings block again"


def test_stop_does_not_count_the_lease_a_worker_holds_for_the_message_it_started_the_agent_for(db_path):
    team(db_path)
    job = send(db_path, "builder-1", "the worker's job")

    async def lease(store):
        return (await message_tools.poll(store, "builder-1", limit=1)).messages

    act(db_path, lease)  # by the worker, which acks it when the agent's turn ends
    environ = {"TEAMROOM_DB": str(db_path), "TEAMROOM_AGENT": "builder-1", "TEAMROOM_MESSAGE_ID": job}
    stop = hook_input("Stop", stop_hook_active=False)
    assert hooks.respond("claude", stop, environ) is None
    other = send(db_path, "builder-1", "polled by the agent itself")
    act(db_path, lease)
    reason = json.loads(hooks.respond("claude", stop, environ))["reason"]
    assert f"1 leased message not yet acked ({other} from lead)" in reason and job not in reason


def test_stop_lets_an_agent_that_holds_nothing_stop(db_path):
    team(db_path)
    send(db_path, "builder-1", "unread is not held")
    assert ask(db_path, "Stop", stop_hook_active=False) is None


def test_codex_speaks_the_same_wire(db_path):
    team(db_path)
    send(db_path, "builder-1", "from the lead")
    answer = ask(db_path, "UserPromptSubmit", client="codex", turn_id="t1", model="gpt", prompt="go on")
    assert set(answer) == {"hookSpecificOutput"}, "codex refuses unknown top-level keys"
    assert set(answer["hookSpecificOutput"]) == {"hookEventName", "additionalContext"}


@pytest.mark.parametrize(
    "stdin",
    ["", "not json", "[1, 2]", json.dumps({"hook_event_name": "PostToolUse", "session_id": "s"})],
)
def test_the_hook_prints_nothing_for_input_it_cannot_use_and_still_exits_zero(db_path, stdin):
    team(db_path)
    send(db_path, "builder-1", "waiting")
    done = subprocess.run(
        [sys.executable, "-m", "teamroom", "hook", "claude"],
        input=stdin,
        capture_output=True,
        text=True,
        env={"TEAMROOM_DB": str(db_path), "TEAMROOM_AGENT": "builder-1", "PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (0, "")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) <= 1


def test_the_hook_says_nothing_where_there_is_no_store_and_creates_none(tmp_path):
    missing = tmp_path / "none.db"
    environ = {"TEAMROOM_DB": str(missing), "TEAMROOM_AGENT": "builder-1"}
    assert hooks.respond("claude", hook_input("SessionStart"), environ) is None
    assert not missing.exists()


def test_the_hook_path_imports_neither_mcp_nor_rich_anyio_or_pydantic(db_path):
    team(db_path)
    send(db_path, "builder-1", "hello")
    probe = (
        "import sys\n"
        "from teamroom.cli import main\n"
        "main(['hook', 'claude'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mcp', 'rich', 'anyio', 'pydantic', 'argparse'})\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=hook_input("SessionStart"),
        capture_output=True,
        text=True,
        env={"TEAMROOM_DB": str(db_path), "TEAMROOM_AGENT": "builder-1", "PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "hello" in done.stdout, "the probe really ran the hook"
    assert done.stdout.splitlines()[-1] == "HEAVY []"


def test_a_store_busy_past_the_timeout_still_gets_the_news_told_only_unremembered(db_path, capsys):
    team(db_path)
    send(db_path, "builder-1", "urgent news", priority="urgent")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock for longer than the hook waits
    try:
        assert "urgent news" in context(ask(db_path, "SessionStart"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert "not remembered" in capsys.readouterr().err
    assert "urgent news" in context(ask(db_path, "UserPromptSubmit")), "not remembered, so told again"


def test_a_store_from_a_newer_teamroom_is_neither_read_nor_written_by_the_hook(db_path):
    team(db_path)
    send(db_path, "builder-1", "hello")
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = db_path.read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "teamroom", "hook", "claude"],
        input=hook_input("SessionStart"),
        capture_output=True,
        text=True,
        env={"TEAMROOM_DB": str(db_path), "TEAMROOM_AGENT": "builder-1", "PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (0, ""), "an agent is told nothing it could misread"
    assert "schema version 99" in done.stderr and "upgrade teamroom" in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert db_path.read_bytes() == before

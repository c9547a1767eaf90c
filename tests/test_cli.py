"""The human commands: what a person in the repository sees and does, through the agents' own store."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from teamroom.cli import main
from teamroom.config import Settings
from teamroom.store import SQLiteStore
from teamroom.tools import agents as agent_tools
from teamroom.tools import messages as message_tools


def seed(db: Path) -> dict[str, str]:
    """A lead, two builders and a few messages, written through the tool functions."""

    async def go() -> dict[str, str]:
        store = SQLiteStore(db)
        await store.open()
        try:
            await agent_tools.register(store, "lead", role="lead")
            await agent_tools.register(store, "builder-1", role="builder")
            await agent_tools.register(store, "builder-2", role="builder")
            await agent_tools.heartbeat(store, "builder-1", status="working", task="fix the login redirect")
            assign = await message_tools.send(
                store, "lead", "builder-1", "Fix the redirect loop", subject="Fix login", kind="assign", priority="high"
            )
            await message_tools.send(store, "lead", "@builders", "Standup in 5", subject="standup")
            leased = await message_tools.poll(store, "builder-2")
            await message_tools.send(store, "builder-1", None, "On it", reply_to=assign.message_id)
            return {"thread": assign.thread_id, "receipt": leased.messages[0].receipt}
        finally:
            await store.close()

    return anyio.run(go)


def run_json(capsys, *argv: str) -> object:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_status_shows_each_agent_with_liveness_task_and_its_queue_depths(db_path, capsys):
    seed(db_path)
    status = run_json(capsys, "status", "--db", str(db_path))
    by_name = {a["name"]: a for a in status["agents"]}
    assert set(by_name) == {"lead", "builder-1", "builder-2"}
    assert by_name["builder-1"]["liveness"] == "live"
    assert by_name["builder-1"]["task"] == "fix the login redirect"
    assert status["queues"]["builder-1"] == {"queued": 2, "leased": 0}
    assert status["queues"]["builder-2"] == {"queued": 0, "leased": 1}
    assert status["queues"]["lead"] == {"queued": 1, "leased": 0}
    assert status["store"] == str(db_path)


def test_inbox_peeks_without_leasing_so_the_agent_still_gets_its_first_attempt(db_path, capsys):
    seed(db_path)
    inbox = run_json(capsys, "inbox", "builder-1", "--db", str(db_path))
    assert [(m["subject"], m["priority"], m["state"]) for m in inbox["messages"]] == [
        ("Fix login", "high", "queued"),
        ("standup", "normal", "queued"),
    ]

    async def poll():
        store = SQLiteStore(db_path)
        await store.open()
        try:
            return await message_tools.poll(store, "builder-1")
        finally:
            await store.close()

    assert [m.attempt for m in anyio.run(poll).messages] == [1, 1]


def test_a_human_sends_as_an_agent_of_its_own_and_the_agent_polls_it(db_path, capsys):
    seed(db_path)
    sent = run_json(
        capsys, "send", "builder-1,builder-2", "Stop and rebase", "--subject", "rebase", "--db", str(db_path)
    )
    assert sent["recipients"] == ["builder-1", "builder-2"]
    inbox = run_json(capsys, "inbox", "builder-2", "--db", str(db_path))
    assert [(m["from"], m["subject"], m["state"]) for m in inbox["messages"]] == [
        ("lead", "standup", "leased"),
        ("human", "rebase", "queued"),
    ]
    names = [a["name"] for a in run_json(capsys, "agents", "--db", str(db_path))["agents"]]
    assert "human" in names, "a human who sends is a known agent, so agents can reply"


def test_send_reads_its_body_from_stdin_and_takes_another_name_with_as(db_path, capsys, monkeypatch):
    seed(db_path)
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("line one\nline two\n"))
    sent = run_json(capsys, "send", "lead", "-", "--as", "builder-2", "--kind", "decision_gate", "--db", str(db_path))
    thread = run_json(capsys, "thread", sent["thread_id"], "--db", str(db_path))
    assert [(m["from"], m["kind"], m["body"]) for m in thread["messages"]] == [
        ("builder-2", "decision_gate", "line one\nline two\n")
    ]


def test_thread_shows_the_conversation_in_order_with_each_deliverys_state(db_path, capsys):
    ids = seed(db_path)
    thread = run_json(capsys, "thread", ids["thread"], "--db", str(db_path))
    assert [(m["from"], m["deliveries"][0]["to"], m["deliveries"][0]["state"]) for m in thread["messages"]] == [
        ("lead", "builder-1", "queued"),
        ("builder-1", "lead", "queued"),
    ]


def test_log_filters_the_audit_log_by_agent_and_kind(db_path, capsys):
    seed(db_path)
    events = run_json(capsys, "log", "--agent", "lead", "--kind", "send", "--db", str(db_path))["events"]
    assert [e["subject"] for e in events] == ["m1", "m2"]
    assert {(e["agent"], e["kind"]) for e in events} == {("lead", "send")}


def read_line(process: subprocess.Popen, timeout: float = 20) -> str:
    """The next line of a child's stdout, or fail after ``timeout`` seconds (never hang the suite)."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no line from {process.args} in {timeout} s")
    return process.stdout.readline()


def test_log_follow_prints_each_new_event_as_it_happens_in_another_process(db_path):
    seed(db_path)
    follower = subprocess.Popen(
        [sys.executable, "-m", "teamroom", "log", "--follow", "--kind", "send", "--limit", "1", "--db", str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )
    try:
        first = json.loads(read_line(follower))  # the newest send so far: the follower is running
        assert first["subject"] == "m3"
        subprocess.run(
            [sys.executable, "-m", "teamroom", "send", "lead", "done", "--as", "builder-2", "--db", str(db_path)],
            check=True,
            capture_output=True,
        )
        line = json.loads(read_line(follower))
        assert (line["agent"], line["kind"], line["subject"]) == ("builder-2", "send", "m4")
    finally:
        follower.kill()
        follower.wait()


def test_tables_are_for_terminals_and_name_every_agent(db_path, capsys):
    seed(db_path)
    assert main(["status", "--table", "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert not out.lstrip().startswith("{")
    for name in ("lead", "builder-1", "builder-2"):
        assert name in out
    assert main(["inbox", "builder-1", "--table", "--db", str(db_path)]) == 0
    assert "Fix login" in capsys.readouterr().out
    assert main(["log", "--table", "--db", str(db_path)]) == 0
    assert "register" in capsys.readouterr().out


def test_a_reading_command_refuses_a_store_that_does_not_exist_and_creates_none(tmp_path, capsys):
    missing = tmp_path / "nowhere.db"
    assert main(["status", "--db", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"no store at {missing}" in err and "--db" in err
    assert not missing.exists()


def test_errors_say_how_to_fix_the_call_and_exit_nonzero(db_path, capsys):
    seed(db_path)
    assert main(["send", "bilder-1", "hi", "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("teamroom: not_found: no agent named 'bilder-1'") and "builder-1" in err


def test_commands_find_the_store_through_TEAMROOM_DB_and_through_the_git_repository(tmp_path, capsys, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("TEAMROOM_DB", raising=False)
    in_repo = Settings.resolve().db_path
    assert in_repo == (repo / ".git" / "teamroom.db").resolve()
    seed(in_repo)
    assert {a["name"] for a in run_json(capsys, "agents")["agents"]} == {"lead", "builder-1", "builder-2"}

    elsewhere = tmp_path / "other.db"
    seed(elsewhere)
    run_json(capsys, "send", "lead", "only in other.db", "--db", str(elsewhere))
    monkeypatch.setenv("TEAMROOM_DB", str(elsewhere))
    inbox = run_json(capsys, "inbox", "lead")
    assert "only in other.db" in [m["body"] for m in inbox["messages"]]


def test_every_human_command_takes_db_and_json(capsys):
    for command in ("status", "agents", "inbox", "send", "thread", "board", "locks", "log"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "--db" in text and "--json" in text, command

"""The CLI as a new user meets it: typos, quiet agents, acting for an agent, a human's inbox, serve in a tty."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import anyio
import pytest

from teamroom.cli import main
from teamroom.store import ManualClock, SQLiteStore
from teamroom.tools import agents as agent_tools
from teamroom.tools import board as board_tools
from teamroom.tools import locks as lock_tools
from teamroom.tools import messages as message_tools
from tests.test_cli import run_json, seed


def act(db, fn, clock=None):
    """Run ``fn(store)`` on the store file, as an agent's server would."""

    async def go():
        store = SQLiteStore(db, clock=clock)
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return anyio.run(go)


def fails(capsys, *argv: str) -> str:
    """Run a command that must fail: exit 2, nothing on stdout; returns stderr."""
    assert main(list(argv)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["inbox", "buidler-1"],
        ["locks", "--holder", "buidler-1"],
        ["log", "--agent", "buidler-1"],
        ["board", "--author", "buidler-1"],
    ],
)
def test_a_mistyped_agent_name_is_not_found_with_the_known_names(db_path, capsys, argv):
    seed(db_path)
    err = fails(capsys, *argv, "--db", str(db_path))
    assert err.startswith("teamroom: not_found: no agent named 'buidler-1'; known agents: builder-1, builder-2, lead")


def test_a_mistyped_board_scope_is_not_found_with_the_scopes_there_are(db_path, capsys):
    seed(db_path)

    async def post(store):
        await board_tools.post_finding(store, "lead", "schema drafted", scope="auth-review")

    act(db_path, post)
    err = fails(capsys, "board", "auth-reveiw", "--db", str(db_path))
    assert err.startswith("teamroom: not_found: no board scope 'auth-reveiw'; scopes: auth-review")
    assert fails(capsys, "status", "--scope", "nosuchscope", "--db", str(db_path)).startswith("teamroom: not_found")
    assert run_json(capsys, "board", "main", "--db", str(db_path))["entries"] == [], "main is there before any post"
    assert len(run_json(capsys, "board", "auth-review", "--db", str(db_path))["entries"]) == 1


def test_a_known_name_with_nothing_to_show_still_reads_as_empty(db_path, capsys):
    seed(db_path)
    assert run_json(capsys, "locks", "--holder", "lead", "--db", str(db_path))["locks"] == []

    async def park(store):
        await lock_tools.claim_lock(store, "builder-1", ["src/a.py"])
        from teamroom.tools import handoffs

        await handoffs.handoff(store, "builder-1", "t", "s", "n", transfer_locks=True)

    act(db_path, park)
    held = run_json(capsys, "locks", "--holder", "handoff:h1", "--db", str(db_path))["locks"]
    assert [lock["resource"] for lock in held] == ["src/a.py"], "locks parked for a handoff are a holder too"


def test_status_shows_an_agent_gone_quiet_while_messages_wait_for_it(db_path, capsys):
    now = time.time_ns() // 1_000_000
    earlier = ManualClock(now - 20 * 60 * 1000)

    async def old_team(store):
        for name in ("lead", "gone-idle", "gone-busy"):
            await agent_tools.register(store, name)
        await message_tools.send(store, "lead", "gone-busy", "please review")

    act(db_path, old_team, earlier)
    status = run_json(capsys, "status", "--db", str(db_path))
    assert [(a["name"], a["liveness"]) for a in status["agents"]] == [("gone-busy", "offline")]
    assert status["queues"]["gone-busy"] == {"queued": 1, "leased": 0}
    everyone = run_json(capsys, "status", "--all", "--db", str(db_path))
    assert {a["name"] for a in everyone["agents"]} == {"lead", "gone-idle", "gone-busy"}


def test_sending_as_an_agent_leaves_its_liveness_alone_and_the_log_says_a_human_sent_it(db_path, capsys):
    earlier = ManualClock(time.time_ns() // 1_000_000 - 20 * 60 * 1000)

    async def old_team(store):
        await agent_tools.register(store, "lead")
        await agent_tools.register(store, "builder-1")

    act(db_path, old_team, earlier)
    sent = run_json(capsys, "send", "lead", "I am done", "--as", "builder-1", "--db", str(db_path))
    agents = {a["name"]: a for a in run_json(capsys, "agents", "--all", "--db", str(db_path))["agents"]}
    assert agents["builder-1"]["liveness"] == "offline", "a human typing says nothing about builder-1 being alive"
    assert "human" not in agents, "acting for builder-1 is not the human speaking as themself"
    events = run_json(capsys, "log", "--kind", "send", "--db", str(db_path))["events"]
    assert [(e["agent"], e["subject"], e["data"]["by"]) for e in events] == [("builder-1", sent["message_id"], "human")]
    inbox = run_json(capsys, "inbox", "lead", "--db", str(db_path))["messages"]
    assert [(m["from"], m["body"]) for m in inbox] == [("builder-1", "I am done")]


def test_sending_as_an_agent_that_does_not_exist_is_not_found_and_sends_nothing(db_path, capsys):
    seed(db_path)
    err = fails(capsys, "send", "lead", "hi", "--as", "bulder-1", "--db", str(db_path))
    assert err.startswith("teamroom: not_found: no agent named 'bulder-1'; known agents:")
    assert len(run_json(capsys, "inbox", "lead", "--db", str(db_path))["messages"]) == 1, "only the seeded reply"


def test_a_human_polls_and_acks_the_replies_sent_to_them(db_path, capsys):
    seed(db_path)
    asked = run_json(capsys, "send", "builder-1", "Which database?", "--kind", "question", "--db", str(db_path))

    async def reply(store):
        await message_tools.send(store, "builder-1", None, "Postgres 16", kind="answer", reply_to=asked["message_id"])
        await message_tools.send(store, "builder-2", "human", "Blocked on CI")

    act(db_path, reply)
    got = run_json(capsys, "poll", "--limit", "1", "--db", str(db_path))
    assert [(m["from"], m["body"], m["attempt"]) for m in got["messages"]] == [("builder-1", "Postgres 16", 1)]
    nxt = run_json(capsys, "poll", "--ack", got["messages"][0]["receipt"], "--db", str(db_path))
    assert nxt["acked"] == 1 and [m["body"] for m in nxt["messages"]] == ["Blocked on CI"]
    assert run_json(capsys, "ack", nxt["messages"][0]["receipt"], "--db", str(db_path)) == {"acked": 1}
    assert run_json(capsys, "inbox", "human", "--db", str(db_path))["messages"] == []
    thread = run_json(capsys, "thread", asked["thread_id"], "--db", str(db_path))
    assert thread["messages"][1]["deliveries"] == [{"to": "human", "state": "acked", "attempt": 1}]
    err = fails(capsys, "ack", nxt["messages"][0]["receipt"] + "x", "--db", str(db_path))
    assert err.startswith("teamroom: lease_expired")


def test_polling_for_an_agent_is_done_on_its_behalf(db_path, capsys):
    seed(db_path)
    got = run_json(capsys, "poll", "--as", "lead", "--db", str(db_path))
    assert [m["body"] for m in got["messages"]] == ["On it"]
    assert run_json(capsys, "ack", "--as", "lead", got["messages"][0]["receipt"], "--db", str(db_path))["acked"] == 1
    events = run_json(capsys, "log", "--agent", "lead", "--limit", "2", "--db", str(db_path))["events"]
    assert [(e["kind"], e["data"]["by"]) for e in events] == [("lease", "human"), ("ack", "human")]
    assert fails(capsys, "poll", "--as", "laed", "--db", str(db_path)).startswith("teamroom: not_found")


def test_the_tables_show_a_human_the_receipt_to_ack(db_path, capsys):
    seed(db_path)
    run_json(capsys, "send", "builder-1", "ping", "--db", str(db_path))

    async def reply(store):
        await message_tools.send(store, "builder-1", "human", "pong")

    act(db_path, reply)
    assert main(["poll", "--table", "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert "teamroom ack RECEIPT" in out and "pong" in out
    receipt = run_json(capsys, "inbox", "human", "--db", str(db_path))  # peeking shows it leased, not its receipt
    assert receipt["messages"][0]["state"] == "leased"


def _read_until(fd: int, want: bytes, timeout: float) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while want not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


@pytest.mark.processes
def test_serve_in_a_terminal_says_what_it_is_and_stops_on_ctrl_c_without_a_traceback(db_path):
    pid, fd = pty.fork()
    if pid == 0:  # the child: `teamroom serve` with the terminal as stdin, stdout and stderr
        os.execv(sys.executable, [sys.executable, "-m", "teamroom", "serve", "--db", str(db_path)])
    try:
        seen = _read_until(fd, b"Ctrl-C to stop", 60)
        assert b"teamroom serve speaks MCP on stdio; an MCP client starts it. Ctrl-C to stop" in seen
        os.write(fd, b"\x03")  # what the terminal turns into SIGINT
        deadline = time.monotonic() + 30
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            seen += _read_until(fd, b"\0", 0.2)
        assert done[0] == pid, "serve did not stop on Ctrl-C"
        assert os.waitstatus_to_exitcode(done[1]) == 130
        assert b"Traceback" not in seen
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


@pytest.mark.processes
def test_serve_started_by_a_client_prints_nothing_on_stderr(db_path):
    done = subprocess.run(
        [sys.executable, "-m", "teamroom", "serve", "--db", str(db_path)],
        input="", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["status", "--help"], ["send", "--help"]])
def test_version_and_help_import_nothing_heavy(argv):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "teamroom", *argv],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    assert not imported & {"pydantic", "rich", "anyio", "mcp", "asyncio"}, imported & {"pydantic", "rich", "anyio"}


def test_the_cli_spells_the_priorities_as_the_schemas_do():
    from teamroom import cli
    from teamroom.schemas.common import PRIORITIES

    assert tuple(PRIORITIES) == cli.PRIORITIES


def test_every_new_command_takes_db_and_json(capsys):
    for command in ("poll", "ack"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "--db" in text and "--json" in text and "--as" in text, command

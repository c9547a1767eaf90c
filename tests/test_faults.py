"""Stores that cannot be used: read-only, corrupt, on a full disk, from a newer teamroom; old stores.

Each must give a clear error (at start: one stderr line and a non-zero exit; on a call: a tool
error) with no traceback, and leave the store as it was. A store written by an earlier schema
version opens under the current code and migrates, with its data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from teamroom.errors import StoreUnavailable
from teamroom.store.sqlite import migrations, statements
from tests.conftest import ToolFailed, in_process
from tests.storeview import SPEC_CODES, integrity

SERVE = [sys.executable, "-m", "teamroom", "serve", "--db"]


def start_and_fail(db: Path | str) -> subprocess.CompletedProcess[str]:
    """Start `teamroom serve` on ``db`` expecting it to refuse the store."""
    return subprocess.run([*SERVE, str(db)], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def assert_one_clear_line(result: subprocess.CompletedProcess[str], case: str, *words: str) -> None:
    assert result.returncode == 2, f"{case}: {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, f"{case}: {result.stderr}"
    assert lines[0].startswith("teamroom: unavailable: "), f"{case}: {lines[0]}"
    for word in words:
        assert word in lines[0], f"{case}: {lines[0]}"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def make_store(db: Path, messages: int = 3) -> None:
    async with in_process(db) as call:
        await call("register", agent="lead", role="lead")
        await call("register", agent="builder", role="builder")
        for i in range(messages):
            await call("send", agent="lead", to="builder", body=f"task {i}")


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small file system of its own (needs the right to mount; skipped elsewhere)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make ``directory`` and the files in it read-only, for root too (a read-only remount)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [directory, *directory.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    remount = subprocess.run(["mount", "-o", "remount,ro", str(directory)], capture_output=True)
    if remount.returncode != 0:
        pytest.skip("running as root without a way to make a file system read-only")
    try:
        yield
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(directory)], check=True)


# --- refused at start ---------------------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.anyio
async def test_a_store_that_cannot_be_used_is_refused_at_start_in_one_clear_line_and_left_untouched(
    tmp_path: Path,
) -> None:
    newer = tmp_path / "newer.db"
    await make_store(newer)
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"these are my notes, not a database\n" * 200)
    (tmp_path / "file").write_text("x")
    cases = {  # what is wrong: (--db, words the line must have)
        "from a newer teamroom": (newer, ["schema version 99", "upgrade teamroom"]),
        "not a database": (notes, ["not a database", "move it aside"]),
        "a directory": (tmp_path, ["is a directory", "--db"]),
        "under a file": (tmp_path / "file" / "teamroom.db", ["cannot create", "--db"]),
    }
    before = {name: digest(db) for name, (db, _) in cases.items() if db.is_file()}

    servers = {  # all at once: each start costs a second or two of interpreter start-up
        name: subprocess.Popen([*SERVE, str(db)], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for name, (db, _) in cases.items()
    }
    for name, server in servers.items():
        _, stderr = server.communicate(timeout=60)
        assert_one_clear_line(
            subprocess.CompletedProcess(server.args, server.returncode, "", stderr), name, *cases[name][1]
        )
    assert {name: digest(cases[name][0]) for name in before} == before


@pytest.mark.processes
@pytest.mark.anyio
async def test_a_read_only_store_is_refused_at_start_in_one_line_and_left_untouched(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", "8m") as fs:
        db = fs / "teamroom.db"
        await make_store(db)
        before = digest(db)
        with read_only(fs):
            result = start_and_fail(db)
        assert_one_clear_line(result, "read-only store", "read-only")
        assert digest(db) == before
        assert integrity(db) == ["ok"]


# --- failing on a call --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_store_corrupted_inside_answers_calls_with_a_clean_error(tmp_path: Path) -> None:
    db = tmp_path / "teamroom.db"
    await make_store(db, messages=60)  # enough rows for many pages of messages and deliveries
    page = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    size = db.stat().st_size
    with db.open("r+b") as f:  # the b-tree header of each page in the file's second half: rows, not the schema
        for offset in range(size // 2 // page * page, size, page):
            f.seek(offset)
            f.write(b"\xee" * 12)

    refusals = []
    try:
        async with in_process(db) as call:
            for tool, args in [
                ("poll", {"agent": "builder", "limit": 100}),
                ("thread", {"agent": "lead", "thread_id": "m1"}),
                ("agents", {"agent": "lead"}),
                ("send", {"agent": "lead", "to": "builder", "body": "one more"}),
            ]:
                try:
                    await call(tool, **args)
                except ToolFailed as failure:
                    refusals.append(failure.text)
    except StoreUnavailable as refused:  # noticed already at open: as good, if it is the same clean error
        refusals.append(str(refused))
    except BaseExceptionGroup as group:
        matched, _ = group.split(StoreUnavailable)
        assert matched is not None, group
        refusals.append(str(_leaf(matched)))
    # SQLite cannot notice every corruption (a damaged index may just find nothing), but what it
    # notices is a clean `unavailable` error that says what to do; never `internal`.
    assert any(t.startswith("unavailable: ") and "malformed" in t and "move it aside" in t for t in refusals), refusals
    for text in refusals:
        assert text.split(":", 1)[0] in (*SPEC_CODES, "unavailable"), text


def _leaf(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group


@pytest.mark.processes
@pytest.mark.anyio
async def test_a_full_disk_fails_the_write_cleanly_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", "1m") as fs:
        db = fs / "teamroom.db"
        sent, failure = await _send_until_refused(db)

        assert failure.startswith("unavailable: ") and "disk is full" in failure, failure
        await _assert_all_there(db, sent)


@pytest.mark.processes
@pytest.mark.anyio
async def test_a_write_error_from_the_file_system_fails_the_call_cleanly_and_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    """Without the right to mount a small disk: the file-size limit makes writes fail (EFBIG)."""
    db = tmp_path / "teamroom.db"
    await make_store(db, messages=0)
    blocks = (db.stat().st_size + 400_000) // 512
    # Ignore SIGXFSZ so that the write itself fails (EFBIG), as it would with a real I/O error.
    limited = ["/bin/sh", "-c", f'trap "" XFSZ; ulimit -f {blocks}; exec "$@"', "sh"]

    sent, failure = await _send_until_refused(db, wrapper=limited)

    assert failure.startswith("unavailable: "), failure
    assert "disk" in failure, failure  # "disk I/O error" or "database or disk is full", by where the write broke
    await _assert_all_there(db, sent)


async def _send_until_refused(db: Path, wrapper: list[str] = ()) -> tuple[list[str], str]:
    """Send 60 KB messages through a real server until a send fails; the server must keep answering."""
    command = [*wrapper, *SERVE, str(db)]
    params = StdioServerParameters(command=command[0], args=command[1:])
    sent: list[str] = []
    async with Client(params, mode="legacy") as client:
        await client.call_tool("register", {"agent": "builder"})
        for i in range(200):
            result = await client.call_tool("send", {"agent": "lead", "to": "builder", "body": f"{i} " + "x" * 60_000})
            if result.is_error:
                failure = result.content[0].text
                break
            sent.append(result.structured_content["message_id"])
        else:
            pytest.fail("200 sends of 60 KB each fitted: the disk was not full")
        alive = await client.call_tool("agents", {"agent": "lead"})
        assert not alive.is_error, alive.content[0].text
    return sent, failure


async def _assert_all_there(db: Path, sent: list[str]) -> None:
    assert integrity(db) == ["ok"]
    conn = sqlite3.connect(db)
    stored = {f"m{r[0]}" for r in conn.execute("SELECT id FROM messages")}
    conn.close()
    assert set(sent) <= stored, f"acknowledged but gone: {sorted(set(sent) - stored)}"


# --- schema upgrades ----------------------------------------------------------------------------

KNOWN = [number for number, _ in migrations()]


def store_at_version(db: Path, version: int) -> None:
    """A store as teamroom at schema ``version`` left it, with an agent, a message and its events."""
    conn = sqlite3.connect(db, isolation_level=None)
    for number, script in migrations():
        if number > version:
            break
        for statement in statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    at = 1_800_000_000_000
    conn.execute("INSERT INTO agents (name, role, first_seen, last_seen) VALUES ('lead', 'lead', ?, ?)", (at, at))
    conn.execute("INSERT INTO agents (name, role, first_seen, last_seen) VALUES ('builder', 'builder', ?, ?)", (at, at))
    conn.execute(
        "INSERT INTO messages (id, sender, recipients, subject, body, kind, priority, thread_id, max_attempts, sent_at)"
        " VALUES (1, 'lead', '[\"builder\"]', 'old', 'written before the upgrade', 'assign', 2, 'm1', 5, ?)",
        (at,),
    )
    conn.execute(
        "INSERT INTO deliveries (message_id, recipient, state, priority, max_attempts, visible_at, updated_at)"
        " VALUES (1, 'builder', 'queued', 2, 5, ?, ?)",
        (at, at),
    )
    conn.execute(
        "INSERT INTO events (at, agent, kind, subject, data) VALUES (?, 'lead', 'send', 'm1', ?)",
        (at, json.dumps({"to": ["builder"], "kind": "assign", "thread_id": "m1"})),
    )
    conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize("version", KNOWN)
async def test_a_store_left_at_an_earlier_schema_version_opens_migrates_and_keeps_its_data(
    tmp_path: Path, version: int, clock
) -> None:
    db = tmp_path / "teamroom.db"
    store_at_version(db, version)

    async with in_process(db, clock) as call:
        polled = await call("poll", agent="builder")
        [message] = polled["messages"]
        assert (message["body"], message["from"], message["kind"]) == ("written before the upgrade", "lead", "assign")
        assert (await call("ack", agent="builder", receipts=[message["receipt"]]))["acked"] == 1
        assert (await call("send", agent="builder", reply_to="m1", body="done"))["thread_id"] == "m1"

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == KNOWN[-1]
    assert conn.execute("SELECT kind FROM events ORDER BY id LIMIT 1").fetchone()[0] == "send"  # the old log is kept
    conn.close()
    assert integrity(db) == ["ok"]


@pytest.mark.processes
@pytest.mark.anyio
async def test_servers_started_together_on_an_old_store_migrate_it_once(tmp_path: Path) -> None:
    db = tmp_path / "teamroom.db"
    store_at_version(db, KNOWN[0])
    answers: list[bool] = []

    async def one() -> None:
        params = StdioServerParameters(command=sys.executable, args=["-m", "teamroom", "serve", "--db", str(db)])
        async with Client(params, mode="legacy") as client:
            answers.append(not (await client.call_tool("agents", {"agent": "lead"})).is_error)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)

    assert answers == [True, True, True]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == KNOWN[-1]
    conn.close()


# --- the transport ------------------------------------------------------------------------------


@pytest.mark.processes
def test_garbage_on_stdin_never_stops_the_server(tmp_path: Path) -> None:
    """Malformed lines (not JSON, bad UTF-8, deep nesting, huge) are dropped; the next good call is answered."""
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        b"not json at all", b"\xff\xfe\x00\x01", b"[]", b'{"jsonrpc": "2.0", "id": 2}',
        f'{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"send","arguments":{deep}}}}}'.encode(),
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
         "params": {"name": "send", "arguments": {"agent": "a", "to": "a", "body": "x" * 3_000_000}}},
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "agents", "arguments": {"agent": "a"}}},
    ]  # fmt: skip
    server = subprocess.Popen(
        [*SERVE, str(tmp_path / "t.db")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        for line in lines:
            server.stdin.write((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n")
        server.stdin.flush()
        answers = {}
        while 5 not in answers:  # the answer to the last good call; the malformed ones get none
            line = server.stdout.readline()
            assert line, f"the server stopped: {server.stderr.read().decode()[-2000:]}"
            answer = json.loads(line)
            answers[answer.get("id")] = answer
        server.stdin.close()
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
    assert answers[4]["result"]["content"][0]["text"].startswith("too_large: ")
    assert answers[5]["result"]["structuredContent"]["agents"][0]["name"] == "a"
    assert b"Traceback" not in server.stderr.read()

"""Where the store lives and how it is opened."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from teamroom.config import Settings
from teamroom.errors import Invalid
from teamroom.store import SQLiteStore
from tests.conftest import in_process


def test_the_flag_wins_over_the_environment_which_wins_over_git(tmp_path: Path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = {"TEAMROOM_DB": "from-env.db", "HOME": str(tmp_path)}
    assert Settings.resolve("flag.db", cwd=tmp_path, environ=env).db_path == tmp_path / "flag.db"
    assert Settings.resolve(None, cwd=tmp_path, environ=env).db_path == tmp_path / "from-env.db"
    in_git = Settings.resolve(None, cwd=tmp_path, environ={"HOME": str(tmp_path)})
    assert (in_git.db_path, in_git.db_origin) == (tmp_path / ".git" / "teamroom.db", "git")


def test_outside_a_repository_the_store_is_per_user(tmp_path: Path):
    settings = Settings.resolve(None, cwd="/", environ={"XDG_DATA_HOME": str(tmp_path)})
    assert (settings.db_path, settings.db_origin) == (tmp_path / "teamroom" / "teamroom.db", "user")


def test_a_bad_durability_or_agent_name_in_the_environment_is_refused(tmp_path: Path):
    with pytest.raises(Invalid, match="TEAMROOM_DURABILITY"):
        Settings.resolve("x.db", cwd=tmp_path, environ={"TEAMROOM_DURABILITY": "yolo"})
    with pytest.raises(Invalid, match="TEAMROOM_AGENT"):
        Settings.resolve("x.db", cwd=tmp_path, environ={"TEAMROOM_AGENT": "no spaces"})


@pytest.mark.anyio
@pytest.mark.parametrize(("durability", "synchronous"), [("normal", 1), ("full", 2)])
async def test_durability_sets_sqlite_synchronous_on_a_wal_store(db_path, durability, synchronous):
    store = SQLiteStore(db_path, durability=durability)
    await store.open()
    try:
        assert (await store._db.execute_fetchall("PRAGMA synchronous"))[0][0] == synchronous
        assert (await store._db.execute_fetchall("PRAGMA journal_mode"))[0][0] == "wal"
    finally:
        await store.close()


@pytest.mark.anyio
async def test_the_audit_log_refuses_to_be_rewritten(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="a")
    conn = sqlite3.connect(db_path)
    for statement in ("UPDATE events SET kind = 'x'", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)


@pytest.mark.anyio
async def test_the_thread_and_agents_resources_are_json(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("register", agent="a", role="lead")
        sent = await call("send", agent="a", to="a", body="note to self")
        thread = json.loads(await call.resource(f"teamroom://threads/{sent['thread_id']}"))
        assert [m["body"] for m in thread["messages"]] == ["note to self"]
        agents = json.loads(await call.resource("teamroom://agents"))
        assert [(a["name"], a["role"], a["unread"]) for a in agents["agents"]] == [("a", "lead", 1)]


@pytest.mark.anyio
async def test_a_resource_for_something_that_does_not_exist_says_so_with_its_code(db_path, clock):
    from mcp.shared.exceptions import MCPError

    async with in_process(db_path, clock) as call:
        with pytest.raises(MCPError, match="^not_found: no thread 'nope'"):
            await call.resource("teamroom://threads/nope")
        with pytest.raises(MCPError, match="^invalid: agent 'bad name'"):
            await call.resource("teamroom://inbox/bad name")

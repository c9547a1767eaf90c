"""`open_store` is the one place a store is built: which targets it takes, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from teamroom.config import Settings
from teamroom.errors import Invalid
from teamroom.store import ManualClock, PostgresStore, SQLiteStore, open_direct, open_store, parse_target
from teamroom.tools import agents as agent_tools


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("teamroom.db", Path("teamroom.db")),
        ("/srv/team/teamroom.db", Path("/srv/team/teamroom.db")),
        ("sqlite:///rel/teamroom.db", Path("rel/teamroom.db")),
        ("sqlite:////srv/team/teamroom.db", Path("/srv/team/teamroom.db")),
        ("./odd:name.db", Path("./odd:name.db")),
    ],
)
def test_a_path_or_a_sqlite_url_names_a_sqlite_store(target, path):
    assert parse_target(target) == ("sqlite", path)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("sqlite:/x.db", "three slashes"),
        ("sqlite://x.db", "three slashes"),
        ("sqlite:///", "three slashes"),
        ("mysql://db/team", "no 'mysql' backend"),
    ],
)
def test_a_target_no_backend_takes_is_refused_saying_what_to_pass(target, words):
    with pytest.raises(Invalid) as refused:
        parse_target(target)
    assert words in str(refused.value) and "sqlite:///PATH" in str(refused.value)


def test_settings_take_a_sqlite_url_from_the_flag_and_the_environment(tmp_path):
    assert Settings.resolve(f"sqlite:///{tmp_path}/a.db").db_path == tmp_path / "a.db"
    env = {"TEAMROOM_DB": f"sqlite:///{tmp_path}/b.db", "HOME": str(tmp_path)}
    assert Settings.resolve(environ=env, cwd=tmp_path).db_path == tmp_path / "b.db"


@pytest.mark.anyio
async def test_open_store_builds_a_store_that_opens_as_a_context_manager(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/s.db", clock=ManualClock())
    assert isinstance(store, SQLiteStore)
    async with store:
        await agent_tools.register(store, "lead", role="lead")
    async with open_store(tmp_path / "s.db") as again:
        assert [a.name for a in (await agent_tools.agents(again, None, include_offline=True)).agents] == ["lead"]


@pytest.mark.parametrize("url", ["postgresql://lead@db.internal:5432/team", "postgres://db/team?sslmode=require"])
def test_a_postgresql_url_names_a_postgres_store_and_settings_keep_it_as_given(tmp_path, url):
    assert parse_target(url) == ("postgresql", url)
    assert Settings.resolve(url, cwd=tmp_path).db_path == url
    from_env = Settings.resolve(environ={"TEAMROOM_DB": url, "HOME": str(tmp_path)}, cwd=tmp_path)
    assert (from_env.db_path, from_env.db_origin) == (url, "env")
    assert isinstance(open_store(url), PostgresStore)
    assert open_direct(url) is None  # the hooks have no PostgreSQL form yet: they say nothing

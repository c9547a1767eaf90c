"""Shared fixtures: a real SQLite store in a temp dir, a manual clock, MCP clients, and a real
PostgreSQL (a private cluster for the session, a fresh schema per test: see `tests/pg.py`).

In-process tests talk to the server through the SDK's ``Client(server)``; process tests spawn
real ``teamroom serve`` subprocesses (see `tests/procs.py`), or use the session's shared ones
(``team``) when their claim is about processes sharing a store, not about a process's lifetime.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from mcp import Client

from teamroom.config import Settings
from teamroom.server import build_server
from teamroom.store import ManualClock
from tests import pg

if TYPE_CHECKING:
    from tests.procs import Served, Team

SHARED_SERVERS = 5


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"  # session-wide, so that the shared servers below can live across tests


@pytest.fixture(scope="session")
async def shared_servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Path, list[Served]]]:
    """Five ``teamroom serve`` processes on one store, started once: each start costs 1-2 s of imports.

    For tests whose claim is about several processes sharing a store, not about a process's
    lifetime: none of these is ever killed (a test that kills one spawns its own on the same db).
    """
    from tests.procs import servers

    db = tmp_path_factory.mktemp("team") / "teamroom.db"
    async with servers(db, SHARED_SERVERS) as started:
        yield db, started


@pytest.fixture
def team(shared_servers: tuple[Path, list[Served]]) -> Team:
    """The shared servers, with names of this test's own (see `tests.procs.Team`)."""
    from tests.procs import Team

    return Team(*shared_servers)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "teamroom.db"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """A PostgreSQL server for the session. Without one the test is skipped, saying why; under CI
    (``CI`` set) it fails instead: CI must never skip the PostgreSQL tests."""
    reason = pg.unavailable()
    if reason is not None:
        if pg.under_ci():
            pytest.fail(f"CI runs the PostgreSQL tests, but: {reason}")
        pytest.skip(reason)
    cluster = pg.Cluster.start()
    yield cluster
    cluster.stop()


_schemas = itertools.count(1)


@pytest.fixture
def pg_url(pg_cluster: pg.Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL of a fresh, empty store on the session's PostgreSQL (a schema of its own, dropped after).

    Its gc archive goes to the test's own directory, not the working directory (TEAMROOM_ARCHIVE_DIR).
    """
    monkeypatch.setenv("TEAMROOM_ARCHIVE_DIR", str(tmp_path / "archive"))
    schema = f"test_{next(_schemas)}"
    with pg.admin(pg_cluster) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield pg.with_schema(pg_cluster.url, schema)
    with pg.admin(pg_cluster) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


class ToolFailed(Exception):
    """A tool call that came back as an MCP tool error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
        self.code = text.split(":", 1)[0]


class Caller:
    """Calls tools by name and returns their structured result, or raises `ToolFailed`."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def __call__(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        if result.is_error:
            raise ToolFailed(result.content[0].text)
        assert result.structured_content is not None
        return result.structured_content

    async def resource(self, uri: str) -> str:
        result = await self.client.read_resource(uri)
        return result.contents[0].text


@asynccontextmanager
async def in_process(
    db_path: Path, clock: ManualClock | None = None, agent: str | None = None
) -> AsyncIterator[Caller]:
    """A real server on a real store file, spoken to in-process by the SDK's client."""
    server = build_server(Settings(db_path=db_path, default_agent=agent), clock=clock)
    async with Client(server) as client:
        yield Caller(client)

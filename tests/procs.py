"""Real ``teamroom serve`` subprocesses spoken to over stdio by the SDK's client."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from tests.conftest import Caller


def serve_command() -> tuple[str, list[str]]:
    """The installed console script when there is one, else ``python -m teamroom``."""
    script = Path(sys.executable).with_name("teamroom")
    if script.exists():
        return str(script), ["serve"]
    return sys.executable, ["-m", "teamroom", "serve"]


class Served(Caller):
    """A Caller bound to one server process, which a test may kill."""

    def __init__(self, client: Client, tag: str) -> None:
        super().__init__(client)
        self.tag = tag

    @property
    def pid(self) -> int:
        marker = f"TEAMROOM_TEST_TAG={self.tag}".encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        return int(entry.name)
                except OSError:
                    continue
        raise LookupError(f"no server process tagged {self.tag}")

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)


@asynccontextmanager
async def served(
    db: Path | None,
    *,
    agent: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Served]:
    """Spawn one server; on exit, close it (a killed server's broken pipe is not an error)."""
    tag = uuid.uuid4().hex
    command, args = serve_command()
    env = {"TEAMROOM_TEST_TAG": tag, **(env or {})}
    if agent:
        env["TEAMROOM_AGENT"] = agent
    if db is not None:
        args = [*args, "--db", str(db)]
    params = StdioServerParameters(command=command, args=args, env=env, cwd=cwd)
    stack = AsyncExitStack()
    client = await stack.enter_async_context(Client(params))
    try:
        yield Served(client, tag)
    finally:
        with contextlib.suppress(Exception, BaseExceptionGroup):  # the server may have been killed on purpose
            await stack.aclose()


@asynccontextmanager
async def servers(db: Path, count: int) -> AsyncIterator[list[Served]]:
    """``count`` servers on one store, started in parallel (the first one alone: it migrates)."""
    started: list[Served] = []
    first, ready, done = anyio.Event(), anyio.Event(), anyio.Event()

    async def hold() -> None:  # a client must be closed by the task that opened it
        async with served(db) as call:
            started.append(call)
            first.set()
            if len(started) == count:
                ready.set()
            await done.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await first.wait()
        for _ in range(count - 1):
            tg.start_soon(hold)
        await ready.wait()
        try:
            yield started
        finally:
            done.set()


class Acting:
    """Calls on one server as one agent: the shared servers have no TEAMROOM_AGENT of their own."""

    def __init__(self, server: Caller, agent: str) -> None:
        self.server, self.agent = server, agent

    async def __call__(self, tool: str, **arguments: Any) -> dict[str, Any]:
        return await self.server(tool, **{"agent": self.agent, **arguments})

    async def resource(self, uri: str) -> str:
        return await self.server.resource(uri)


class Team:
    """The session's shared servers (see the ``team`` fixture), seen by one test.

    Every test shares the store, so each takes its own names: ``name('lead')`` is an agent, a role
    or a scope no other test uses, ``path('src/**')`` a resource under a directory of its own.
    Nothing another test left in the store can then match what this test looks for.
    """

    _tests = itertools.count(1)

    def __init__(self, db: Path, started: list[Served]) -> None:
        self.db, self.servers = db, started
        self.prefix = f"t{next(self._tests)}"

    def name(self, base: str) -> str:
        return f"{self.prefix}-{base}"

    def path(self, resource: str) -> str:
        return f"{self.prefix}/{resource}"

    def acting(self, *agents: str) -> list[Acting]:
        """One caller per agent (its name made the test's own), each on a server of its own."""
        assert len(agents) <= len(self.servers), "more agents than shared servers"
        return [Acting(server, self.name(agent)) for server, agent in zip(self.servers, agents, strict=False)]

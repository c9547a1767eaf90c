"""Real ``teamroom serve`` subprocesses spoken to over stdio by the SDK's client."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

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

"""N real ``teamroom serve`` processes on one store, each with its own MCP stdio client.

The harness owns every process: it knows each server's pid (the server writes it before it starts,
through ``sh -c 'echo $$ > pidfile; exec ...'``), so a killer can SIGKILL one at any moment and
start another. Every call goes through `Cluster.call`, which records it in the `History` with its
outcome: ``ok`` (a result), ``fail`` (a tool error, with its code) or ``info`` (the server died or
the call timed out: the call may or may not have taken effect, as in Jepsen's histories).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp import Client, StdioServerParameters

from ..procs import serve_command
from .history import History, Op

CALL_TIMEOUT_S = 20.0
SPAWN_TIMEOUT_S = 30.0

# The server writes its pid, then becomes `teamroom serve` (exec keeps the pid); stderr goes to a log.
_LAUNCH = 'echo $$ > "$1"; log="$2"; shift 2; exec "$@" 2>>"$log"'


@dataclass(eq=False)
class Node:
    """One server process and the client connected to it."""

    id: int
    client: Client | None = None
    pid: int | None = None
    killed: bool = False
    stop: anyio.Event = field(default_factory=anyio.Event)


class Cluster:
    """Starts, kills and restarts servers; routes each call to a random live one."""

    def __init__(self, db: Path, workdir: Path, history: History, tg: TaskGroup, rng: Random) -> None:
        self.db = db
        self.workdir = workdir
        self.history = history
        self.tg = tg
        self.rng = rng
        self.nodes: list[Node] = []
        self._ids = itertools.count()
        self._changed = anyio.Event()
        self._closing = False
        self.tools: set[str] = set()

    # --- processes -------------------------------------------------------------------------

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.client is not None and not n.killed]

    async def start(self) -> Node | None:
        """Start one server and wait for its handshake; None (and a recorded failure) if it cannot start."""
        node = Node(next(self._ids))
        try:
            with anyio.fail_after(SPAWN_TIMEOUT_S):
                await self.tg.start(self._run, node)
        except Exception as exc:  # a server that cannot start after a crash is a finding, not a harness error
            self.history.spawn_failures.append(f"server {node.id}: {type(exc).__name__}: {exc}")
            return None
        self.history.spawns += 1
        self.nodes.append(node)
        if self._closing:  # started while the run was ending
            node.stop.set()
        self._wake()
        return node

    async def _run(self, node: Node, *, task_status: TaskStatus[None]) -> None:
        pidfile = self.workdir / f"server-{node.id}.pid"
        command, args = serve_command()
        params = StdioServerParameters(
            command="/bin/sh",
            args=["-c", _LAUNCH, "sh", str(pidfile), str(self.log_path(node)), command, *args, "--db", str(self.db)],
            env={"PYTHONUNBUFFERED": "1"},
        )
        started = False
        try:
            async with Client(params, mode="legacy") as client:
                node.pid = int(pidfile.read_text().strip())
                node.client = client
                task_status.started()
                started = True
                await node.stop.wait()
        except Exception as exc:
            if not started:
                raise
            if not node.killed:  # a server that was not killed must not break its connection
                self.history.node_errors.append(f"server {node.id}: {type(exc).__name__}: {exc}")
        finally:
            node.client = None

    def log_path(self, node: Node) -> Path:
        return self.workdir / f"server-{node.id}.log"

    def kill(self, node: Node) -> None:
        """SIGKILL: no cleanup, no flush; whatever the server was doing stops mid-way."""
        if node.killed or node.pid is None:
            return
        node.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.pid, signal.SIGKILL)
        self.history.kills += 1
        node.stop.set()
        self._wake()

    def stop_all(self) -> None:
        """Close every client; each server exits when its stdin closes (a clean shutdown)."""
        self._closing = True
        for node in self.nodes:
            node.stop.set()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def pick(self) -> Node:
        """A random live server, waiting for one if all are down."""
        while True:
            nodes = self.live()
            if nodes:
                return self.rng.choice(nodes)
            await self._changed.wait()

    async def list_tools(self) -> set[str]:
        """The servers' tool names (the workload adapts: lock claimers need claim_lock)."""
        while True:
            node = await self.pick()
            try:
                assert node.client is not None
                self.tools = {t.name for t in (await node.client.list_tools()).tools}
                return self.tools
            except Exception:  # killed meanwhile; ask another
                continue

    # --- calls -----------------------------------------------------------------------------

    async def call(self, worker: str, tool: str, **args: Any) -> Op:
        """Call ``tool`` on a random live server and record the outcome."""
        node = await self.pick()
        op = Op(worker=worker, node=node.id, tool=tool, args=args, invoked=time.monotonic())
        try:
            assert node.client is not None
            with anyio.fail_after(CALL_TIMEOUT_S):
                result = await node.client.call_tool(tool, args)
        except TimeoutError:
            op.outcome, op.error = "info", "timeout"
        except Exception as exc:  # the connection died with the server: the call may or may not have happened
            op.outcome, op.error = "info", f"{type(exc).__name__}: {exc}"
        else:
            if result.is_error:
                op.outcome, op.error = "fail", result.content[0].text
            else:
                op.outcome, op.result = "ok", result.structured_content
        op.completed = time.monotonic()
        self.history.ops.append(op)
        return op

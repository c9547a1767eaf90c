"""``teamroom web``: open the agents' store and serve the dashboard on 127.0.0.1 until interrupted."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import uvicorn

from teamroom.config import Settings
from teamroom.console import store_for
from teamroom.errors import Invalid, StoreUnavailable
from teamroom.tools import agents as agent_tools
from teamroom.web.app import create_app

log = logging.getLogger(__name__)

ENV_WEB_PORT = "TEAMROOM_WEB_PORT"
DEFAULT_PORT = 7410
HOST = "127.0.0.1"  # loopback only: the page acts as `human` with no login
ACTOR = "human"


def port_from(flag: int | None, environ: os.Mapping[str, str] | None = None) -> int:
    """``--port``, else TEAMROOM_WEB_PORT, else 7410; 0 picks a free port."""
    env = os.environ if environ is None else environ
    raw: int | str = flag if flag is not None else env.get(ENV_WEB_PORT, "").strip() or DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise Invalid(f"{ENV_WEB_PORT}={raw!r} is not a port number; use 1-65535, or 0 for any free port") from None
    if not 0 <= port <= 65535:
        raise Invalid(f"port {port} is out of range; use 1-65535, or 0 for any free port")
    return port


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port, or a clear error when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise StoreUnavailable(
            f"cannot listen on {HOST}:{port}: {exc.strerror}; pass --port another number (0 picks a free one)"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def make_known(store, actor: str) -> None:
    """Register the human once, so agents can address it (``to: human``, a decision_gate) before it acts."""
    known = await agent_tools.agents(store, None, include_offline=True)
    if actor not in {a.name for a in known.agents}:
        await agent_tools.register(store, actor, description="a person, at the dashboard or the CLI")


async def run(settings: Settings, port: int) -> None:
    async with store_for(settings) as store:
        sock = bind(port)
        await make_known(store, ACTOR)
        app = create_app(store, settings=settings, actor=ACTOR)
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        url = f"http://{HOST}:{sock.getsockname()[1]}/"
        print(f"teamroom web: {url} (store {settings.db_path}); Ctrl+C stops it", flush=True)
        try:
            await server.serve(sockets=[sock])
        finally:
            await app.state.feed.close()
            sock.close()


def serve_web(settings: Settings, port: int | None = None) -> int:
    asyncio.run(run(settings, port_from(port)))
    return 0

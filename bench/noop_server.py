"""The floor: a server on the same SDK with one tool that does nothing but return a small model."""

from __future__ import annotations

from mcp.server import MCPServer
from pydantic import BaseModel


class Pong(BaseModel):
    ok: bool


server = MCPServer("noop")


@server.tool()
async def noop(agent: str | None = None) -> Pong:
    """Do nothing."""
    return Pong(ok=True)


if __name__ == "__main__":
    server.run()

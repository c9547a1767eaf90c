"""Read-only views a human's dashboard needs that no MCP tool offers: recent threads, the board's scopes."""

from __future__ import annotations

from teamroom.store import Store
from teamroom.tools import _check


async def recent_threads(store: Store, limit: int | None = None) -> list[str]:
    """Ids of the threads that moved most recently, newest first (default 12, at most 100)."""
    return await store.recent_threads(_check.whole("limit", limit, (1, 100), 12))


async def board_scopes(store: Store) -> list[str]:
    """Every scope of the board, in the order they were opened."""
    return await store.board_scopes()

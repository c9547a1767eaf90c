"""The dashboard's reads that no tool has: which threads moved lately, which board scopes exist."""

from __future__ import annotations

from teamroom.store.tx import Tx

RECENT_MESSAGES = 2_000  # threads are looked for among this many newest messages: bounded, whatever the store holds


def recent_threads(tx: Tx, limit: int) -> list[str]:
    """Thread ids, the one with the newest message first, among the newest messages (walked by id, no scan)."""
    rows = tx.all("web.recent_threads", (RECENT_MESSAGES, limit))
    return [r["thread_id"] for r in rows]


def board_scopes(tx: Tx) -> list[str]:
    """Every scope of the board, in the order they were opened."""
    return [r["name"] for r in tx.all("web.board_scopes")]

"""Rules that the tools and the hooks' digest both apply, written once.

Standard library only: the hooks import this on every prompt (see `teamroom.store.sqlite.direct`).
"""

from __future__ import annotations

from typing import Any

from teamroom.store.tx import Tx, loads

DEFAULT_SCOPE = "main"


def addresses(agent: str, role: str | None, capabilities: list[str]) -> set[str]:
    """Every way a handoff's ``to`` can name ``agent``: its name, '@role', '@roles' (as send resolves)."""
    groups = {*capabilities, *([role] if role else [])}
    return {agent, *(f"@{g}" for g in groups), *(f"@{g}s" for g in groups)}


def board_unread(tx: Tx, agent: str, scope: str, cursor: int) -> Any:
    """``agent``'s unread entries in ``scope`` past ``cursor``: a row of ``unread`` (how many), ``first``, ``newest``.

    Unread: not its own, not superseded, not already returned to it by a filtered read. read_board's
    count, its cursor and the hooks' digest all come from this one query.
    """
    return tx.one("board.unread_span", (agent, scope, cursor))


def open_handoffs(tx: Tx, agent: str, limit: int) -> list[Any]:
    """The open handoffs ``agent`` would resume, newest first, at most ``limit``.

    Open and addressed to it (its name or role, as given or as resolved), or its own checkpoint (sent
    to nobody) that it has not handed on since. Every open handoff counts: the query finds them, with
    no window of the newest few. ``resume()`` takes the first; the hooks list them.
    """
    me = tx.one("handoffs.addressee", (agent,))
    mine = addresses(agent, me["role"], loads(me["capabilities"]) or []) if me else {agent}
    return tx.all("handoffs.open_for", (tx.array(sorted(mine)), agent, limit))

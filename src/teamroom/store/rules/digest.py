"""What the hooks put in front of an agent: its news and its holdings, in one read.

Plain dicts from the standard library only (see `teamroom.store.sqlite.direct`): the hooks run on
every prompt and must start in milliseconds. Areas whose tables are not in this store
(an older schema) contribute nothing.
"""

from __future__ import annotations

from typing import Any

from teamroom.store.rules import common
from teamroom.store.tx import Tx
from teamroom.text import clip

PRIORITY_NAMES = {0: "low", 1: "normal", 2: "high", 3: "urgent"}
EXPIRING_MS = 2 * 60 * 1000  # a lock this close to its end is worth a warning


def digest(tx: Tx, agent: str, top: int) -> dict[str, Any]:
    """Unread messages (the ``top`` most urgent), leases held, and whatever the other areas add."""
    tables = {r[0] for r in tx.all("digest.tables")}
    out: dict[str, Any] = {"agent": agent, "now": tx.now, "messages": _unread(tx, agent, top)}
    out["leases"] = [
        {"message_id": f"m{r[0]}", "from": r[1], "subject": r[2], "expires_at": r[3]}
        for r in tx.all("digest.leases", (agent, tx.now))
    ]
    for name, contribute in CONTRIBUTIONS:
        if name in tables:
            out.update(contribute(tx, agent, top))
    return out


def _unread(tx: Tx, agent: str, top: int) -> dict[str, Any]:
    """Deliveries the agent can poll (queued, or a lapsed lease): the ``top`` most urgent and the ``top`` newest."""
    count, newest = tx.one("digest.waiting", (agent, tx.now))
    urgent = tx.all("digest.waiting_urgent", (agent, tx.now, top))
    latest = tx.all("digest.waiting_latest", (agent, tx.now, top))
    return {
        "count": count,
        "newest": newest or 0,
        "top": [_row(r) for r in urgent],
        "latest": [_row(r) for r in latest],
    }


def _row(r: Any) -> dict[str, Any]:
    return {
        "delivery": r[0],
        "message_id": f"m{r[1]}",
        "from": r[2],
        "subject": r[3] or _first_line(r[6]),
        "kind": r[4],
        "priority": PRIORITY_NAMES.get(r[5], "normal"),
    }


def _first_line(body: str, width: int = 80) -> str:
    return clip(body.strip().splitlines()[0] if body.strip() else "", width)


def _locks(tx: Tx, agent: str, top: int) -> dict[str, Any]:
    """The agent's live locks, each marked when it ends within EXPIRING_MS."""
    rows = tx.all("digest.locks", (agent, tx.now))
    return {
        "locks": [
            {
                "resource": r[0],
                "mode": r[1],
                "token": r[2],
                "expires_at": r[3],
                "expiring": r[3] - tx.now <= EXPIRING_MS,
            }
            for r in rows
        ]
    }


def _board(tx: Tx, agent: str, top: int) -> dict[str, Any]:
    """Unread entries in every scope the agent follows (posted to or read), and in the default scope."""
    followed = {common.DEFAULT_SCOPE: 0, **dict(tx.all("board.cursors", (agent,)))}
    scopes = []
    for scope, cursor in sorted(followed.items()):
        span = common.board_unread(tx, agent, scope, cursor)
        if not span["unread"]:
            continue
        entries = tx.all("board.newest_unread", (agent, scope, cursor, top))
        scopes.append(
            {
                "scope": scope,
                "unread": span["unread"],
                "newest": span["newest"],
                "top": [
                    {"seq": r[0], "kind": r[1], "author": r[2], "title": r[3] or _first_line(r[4])} for r in entries
                ],
            }
        )
    return {"board": scopes}


def _handoffs(tx: Tx, agent: str, top: int) -> dict[str, Any]:
    """The ``top`` open handoffs that ``resume()`` chooses from, newest first: the first is the one it takes."""
    return {
        "handoffs": [
            {
                "handoff_id": f"h{r['id']}",
                "seq": r["id"],
                "from": r["sender"],
                "task": r["task"],
                "next_step": r["next_step"],
            }
            for r in common.open_handoffs(tx, agent, top)
        ]
    }


# (table that must exist, f(tx, agent, top) -> keys to add): an older store without it adds nothing.
CONTRIBUTIONS: list[tuple[str, Any]] = [("locks", _locks), ("board_entries", _board), ("handoffs", _handoffs)]

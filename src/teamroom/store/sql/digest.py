"""What the hooks put in front of an agent: its news and its holdings, in one read.

Plain dicts from the standard library only (see `teamroom.store.direct`): the hooks run on
every prompt and must start in milliseconds. Areas whose tables are not in this store
(an older schema) contribute nothing.
"""

from __future__ import annotations

from typing import Any

from teamroom.store.sql.tx import Tx

PRIORITY_NAMES = {0: "low", 1: "normal", 2: "high", 3: "urgent"}
EXPIRING_MS = 2 * 60 * 1000  # a lock this close to its end is worth a warning


def digest(tx: Tx, agent: str, top: int) -> dict[str, Any]:
    """Unread messages (the ``top`` most urgent), leases held, and whatever the other areas add."""
    tables = {r[0] for r in tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    out: dict[str, Any] = {"agent": agent, "now": tx.now, "messages": _unread(tx, agent, top)}
    out["leases"] = [
        {"message_id": f"m{r[0]}", "from": r[1], "subject": r[2], "expires_at": r[3]}
        for r in tx.all(
            "SELECT m.id, m.sender, m.subject, d.visible_at FROM deliveries d JOIN messages m ON m.id = d.message_id"
            " WHERE d.recipient = ? AND d.state = 'leased' AND d.visible_at > ? ORDER BY d.id",
            (agent, tx.now),
        )
    ]
    for name, contribute in CONTRIBUTIONS:
        if name in tables:
            out.update(contribute(tx, agent, top))
    return out


def _unread(tx: Tx, agent: str, top: int) -> dict[str, Any]:
    """Deliveries the agent can poll (queued, or a lease that lapsed): the ``top`` most urgent and the ``top`` newest."""
    waiting = (
        " FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.recipient = ?"
        " AND (d.state = 'queued' OR (d.state = 'leased' AND d.visible_at <= ?))"
    )
    count, newest = tx.one(f"SELECT COUNT(*), MAX(d.id){waiting}", (agent, tx.now))
    columns = f"SELECT d.id, m.id, m.sender, m.subject, m.kind, m.priority, m.body{waiting}"
    urgent = tx.all(f"{columns} ORDER BY d.priority DESC, d.id LIMIT ?", (agent, tx.now, top))
    latest = tx.all(f"{columns} ORDER BY d.id DESC LIMIT ?", (agent, tx.now, top))
    return {"count": count, "newest": newest or 0, "top": [_row(r) for r in urgent], "latest": [_row(r) for r in latest]}


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
    line = body.strip().splitlines()[0] if body.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


# (table that must exist, f(tx, agent, top) -> keys to add): locks, board and handoffs plug in here.
CONTRIBUTIONS: list[tuple[str, Any]] = []

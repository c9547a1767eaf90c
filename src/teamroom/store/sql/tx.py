"""The transaction handle every SQL function receives."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from teamroom.errors import NotFound

TOUCH_EVERY_MS = 1_000  # last_seen feeds liveness (minutes), so one write a second per agent is plenty


class Tx:
    """An open transaction: the connection, the time it started, and the audit-log writer.

    A plain class, not a dataclass: the hooks import this module, and dataclasses (with inspect and
    ast behind it) would cost them ~7 ms on every prompt.
    """

    __slots__ = ("conn", "now", "seen", "touched")

    def __init__(self, conn: sqlite3.Connection, now: int, seen: dict[str, int] | None = None) -> None:
        self.conn = conn
        self.now = now  # ms since the epoch, read after the write lock was taken
        self.seen = {} if seen is None else seen  # the store's cache: agent -> last_seen written
        self.touched: list[str] = []  # agents whose last_seen this transaction wrote

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def event(self, agent: str | None, kind: str, subject: str | None = None, /, **data: Any) -> None:
        """Append one state change to the audit log, in the same transaction as the change."""
        self.conn.execute(
            "INSERT INTO events (at, agent, kind, subject, data) VALUES (?, ?, ?, ?, ?)",
            (self.now, agent, kind, subject, dumps(data) if data else None),
        )

    def touch(self, agent: str) -> None:
        """Record that ``agent`` called a tool now; a name that calls any tool is known from then on."""
        if self.seen.get(agent, -TOUCH_EVERY_MS) > self.now - TOUCH_EVERY_MS:
            return
        self.touched.append(agent)
        new = self.conn.execute(
            "INSERT OR IGNORE INTO agents (name, first_seen, last_seen) VALUES (?, ?, ?)",
            (agent, self.now, self.now),
        ).rowcount
        if new:
            self.event(agent, "agent_seen", agent)
        else:
            self.conn.execute("UPDATE agents SET last_seen = ? WHERE name = ?", (self.now, agent))


def parse_ref(ref: str, prefix: str, noun: str, hint: str) -> int:
    """A typed id (``m42``, ``e12``, ``h7``; the bare number too) to its integer; anything else does not exist."""
    digits = ref[1:] if ref[:1] == prefix else ref
    if not digits.isdigit() or len(digits) > 18:
        raise NotFound(f"no {noun} {ref!r}; {hint}")
    return int(digits)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def iso(ms: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-21T20:40:58.123Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def in_list(column: str, values: list[str] | None) -> tuple[str, list[str]]:
    """An ``AND column IN (?, ...)`` clause and its parameters, or nothing when no filter is given."""
    if not values:
        return "", []
    return f" AND {column} IN ({', '.join('?' * len(values))})", list(values)

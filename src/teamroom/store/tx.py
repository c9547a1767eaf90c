"""The transaction handle every rule receives, and the loader of a backend's named queries.

Rules (`teamroom.store.rules`) never hold SQL: they name a query (``tx.one("messages.lease_ready",
params)``) and the backend's dialect file (``store/<backend>/queries.sql``) supplies its text, in
blocks that start ``-- name: area.what``, as procrastinate keeps ``sql/queries.sql``. Standard
library only: the hooks import this on every prompt.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from teamroom.errors import NotFound

FETCH_BATCH = 8  # rows fetched between two switch points (see `Tx.all`)
TOUCH_EVERY_MS = 1_000  # last_seen feeds liveness (minutes), so one write a second per agent is plenty


class Tx:
    """An open transaction: the connection, the time it started, and the audit-log writer.

    A plain class, not a dataclass: the hooks import this module, and dataclasses (with inspect and
    ast behind it) would cost them ~7 ms on every prompt.
    """

    __slots__ = ("acting_for", "by", "conn", "now", "queries", "seen", "swept", "touched")

    def __init__(
        self,
        conn: sqlite3.Connection,
        now: int,
        seen: dict[str, int] | None = None,
        queries: dict[str, str] | None = None,
    ) -> None:
        self.conn = conn
        self.now = now  # ms since the epoch, read after the write lock was taken
        self.seen = {} if seen is None else seen  # the store's cache: agent -> last_seen written
        self.touched: list[str] = []  # agents whose last_seen this transaction wrote
        self.swept = False  # whether housekeeping ran in this transaction
        self.acting_for: str | None = None  # see `act_for`
        self.by: str | None = None
        self.queries = sqlite_queries() if queries is None else queries

    def _sql(self, query: str) -> str:
        try:
            return self.queries[query]
        except KeyError:
            raise KeyError(f"no query named {query!r} in this backend's queries.sql") from None

    def one(self, query: str, params: Any = ()) -> Any:
        """The first row of the named query, or None."""
        return self.conn.execute(self._sql(query), params).fetchone()

    def all(self, query: str, params: Any = ()) -> list[Any]:
        """Every row of the named query.

        Fetched in batches, letting go of the GIL between them: a transaction runs on the store's own
        thread, and a long fetch (500 board entries of 60 KiB) would otherwise keep the event loop
        waiting for the GIL for milliseconds at a time.
        """
        cursor = self.conn.execute(self._sql(query), params)
        rows = cursor.fetchmany(FETCH_BATCH)
        while len(rows) % FETCH_BATCH == 0 and rows:
            time.sleep(0)  # a switch point: the loop's thread takes the GIL if it waits for it
            batch = cursor.fetchmany(FETCH_BATCH)
            if not batch:
                break
            rows.extend(batch)
        return rows

    def run(self, query: str, params: Any = ()) -> int:
        """Run the named statement; the number of rows it changed."""
        return self.conn.execute(self._sql(query), params).rowcount

    def many(self, query: str, rows: Iterable[Any]) -> int:
        """Run the named statement once per parameter row; the number of rows changed in all."""
        return self.conn.executemany(self._sql(query), rows).rowcount

    @staticmethod
    def array(values: Iterable[Any]) -> Any:
        """A list as one parameter: SQLite's queries read it with ``json_each(?)``."""
        return dumps(list(values))

    def act_for(self, agent: str, by: str) -> None:
        """From now on in this transaction, ``by`` (a human at the CLI) acts for ``agent``: ``agent`` is not
        marked as seen (a human typing says nothing of whether the agent is alive), and every audit event
        of ``agent`` names ``by``, so the log tells what a human sent as ``builder-1`` from what it sent."""
        self.acting_for, self.by = agent, by

    def event(self, agent: str | None, kind: str, subject: str | None = None, /, **data: Any) -> None:
        """Append one state change to the audit log, in the same transaction as the change."""
        if self.by is not None and agent == self.acting_for:
            data["by"] = self.by
        self.run("events.append", (self.now, agent, kind, subject, dumps(data) if data else None))

    def touch(self, agent: str) -> None:
        """Record that ``agent`` called a tool now; a name that calls any tool is known from then on."""
        if agent == self.acting_for or self.seen.get(agent, -TOUCH_EVERY_MS) > self.now - TOUCH_EVERY_MS:
            return
        self.touched.append(agent)
        if self.run("agents.seen_first", (agent, self.now)):
            self.event(agent, "agent_seen", agent)
        else:
            self.run("agents.seen_again", (agent, self.now))


def parse_ref(ref: str, prefix: str, noun: str, hint: str) -> int:
    """A typed id (``m42``, ``e12``, ``h7``; the bare number too) to its integer; anything else does not exist."""
    digits = ref[1:] if ref[:1] == prefix else ref
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:  # isdigit alone: '١' is 1, '²' no int
        raise NotFound(f"no {noun} {ref!r}; {hint}")
    return int(digits)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def iso(ms: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-21T20:40:58.123Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_queries(text: str) -> dict[str, str]:
    """``{name: sql}`` from blocks headed ``-- name: area.what``; other comments and blank lines are dropped."""
    queries: dict[str, str] = {}
    name = None
    lines: list[str] = []
    for line in [*text.splitlines(), "-- name: <end>"]:
        stripped = line.strip()
        if stripped.startswith("-- name:"):
            if name is not None:
                sql = "\n".join(lines).strip()
                if not sql:
                    raise ValueError(f"query {name!r} has no SQL")
                if name in queries:
                    raise ValueError(f"query {name!r} is defined twice")
                queries[name] = sql
            name, lines = stripped.removeprefix("-- name:").strip(), []
        elif stripped and not stripped.startswith("--"):
            lines.append(line)
    return queries


@cache
def sqlite_queries() -> dict[str, str]:
    """The SQLite dialect's named queries (store/sqlite/queries.sql), read once per process."""
    return load_queries((Path(__file__).parent / "sqlite" / "queries.sql").read_text(encoding="utf-8"))

"""One-shot synchronous access to a store, for short-lived processes that must answer in milliseconds.

The hooks run on every prompt an agent receives, so they cannot pay ~150 ms for anyio and the
pydantic schemas: this opens the SQLite file with the standard library alone and runs the same
kind of `Tx` functions as `SQLiteStore` (a write is one ``BEGIN IMMEDIATE`` transaction). It never
creates or migrates a store: a store that does not exist yet has nothing to say.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from teamroom.errors import StoreUnavailable
from teamroom.store.rules import sessions
from teamroom.store.tx import Tx

T = TypeVar("T")


class DirectStore:
    """A plain connection to an existing store file; use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, now_ms: Callable[[], int]) -> None:
        self.conn = conn
        self.now_ms = now_ms

    @classmethod
    def open(
        cls, path: Path, *, busy_ms: int = 1000, durability: str = "normal", now_ms: Callable[[], int] | None = None
    ) -> DirectStore | None:
        """The store at ``path``, or None when there is no store there yet."""
        if not path.is_file():
            return None
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_ms / 1000)
        try:
            version, latest = conn.execute("PRAGMA user_version").fetchone()[0], latest_schema()
            if version > latest:  # its tables may mean something else now: read nothing, write nothing
                raise StoreUnavailable(
                    f"store {path} has schema version {version}, newer than this teamroom knows ({latest});"
                    " upgrade teamroom (pip install -U teamroom)"
                )
        except BaseException:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'full' else 'NORMAL'}")
        return cls(conn, now_ms or (lambda: time.time_ns() // 1_000_000))

    def __enter__(self) -> DirectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    # --- the hooks' verbs ---------------------------------------------------------------------

    def look(self, env_agent: str | None, session: str | None, top: int) -> tuple[str, dict, dict, bool] | None:
        """Who the session's agent is, what the hooks last showed it, and its digest now (one read)."""
        return self.read(sessions.look, env_agent, session, top)

    def remember(self, session: str, agent: str, client: str, from_env: bool, shown: dict[str, Any]) -> None:
        """Record what a hook showed ``session``; a hook that knows the agent from its environment binds it."""
        self.write(sessions.remember, session, agent, client, from_env, shown)

    # --- transactions ----------------------------------------------------------------------

    def read(self, fn: Callable[..., T], *args: Any) -> T:
        return self._run("BEGIN", fn, args)

    def write(self, fn: Callable[..., T], *args: Any) -> T:
        return self._run("BEGIN IMMEDIATE", fn, args)

    def _run(self, begin: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        self.conn.execute(begin)
        try:
            result = fn(Tx(self.conn, self.now_ms()), *args)
            self.conn.execute("COMMIT")
            return result
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise


def latest_schema() -> int:
    """The newest migration this teamroom carries (a directory listing: no import of the async store)."""
    names = os.listdir(Path(__file__).parent / "migrations")
    return max(int(name[:4]) for name in names if name.endswith(".sql") and name[:4].isdigit())

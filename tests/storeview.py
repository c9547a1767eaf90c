"""Looking at a store file (and the server's tools) from the outside, the way the tests that judge the server do."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio

from teamroom.config import Settings
from teamroom.server import build_server

SPEC_CODES = ("invalid", "not_found", "not_owner", "lease_expired", "conflict", "too_large", "forbidden")


def snapshot(db: Path, *, skip: tuple[str, ...] = ("events",)) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit log: equal snapshots mean nothing changed."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if r[0] not in skip
        ]
        view = {t: sorted(conn.execute(f'SELECT * FROM "{t}"'), key=repr) for t in tables if t != "sqlite_sequence"}
        if "sqlite_sequence" in tables:  # the log's own counter moves with the log
            view["sqlite_sequence"] = [
                r for r in conn.execute("SELECT * FROM sqlite_sequence ORDER BY 1") if r[0] not in skip
            ]
        return view
    finally:
        conn.close()


def integrity(db: Path) -> list[str]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return [r[0] for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def diff(before: dict[str, list], after: dict[str, list]) -> str:
    """Which tables changed, for an assertion message."""
    changed = []
    for table in sorted(before.keys() | after.keys()):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old != new:
            changed.append(f"{table}: -{sorted(old - new)[:3]} +{sorted(new - old)[:3]}")
    return "; ".join(changed) or "no change"


def tool_names() -> set[str]:
    """The tools this build of the server has (tests of tools still being built skip without them)."""

    async def names() -> set[str]:
        return {t.name for t in await build_server(Settings(db_path=Path("unused.db"))).list_tools()}

    return anyio.run(names)

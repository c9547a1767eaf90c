"""Query plans of what a workload really ran: the check behind every ``*query_plans`` test."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

from teamroom.store import SQLiteStore

DML = re.compile(r"\s*(SELECT|UPDATE|DELETE|INSERT)", re.I)
SCAN = re.compile(r"SCAN (\w+)")


async def traced(store: SQLiteStore, workload: Callable[[], Awaitable[object]]) -> set[str]:
    """Every statement the store runs during ``workload``, with its values; the store is closed after."""
    statements: set[str] = set()
    await store._db.set_trace_callback(statements.add)  # called on the store's thread
    try:
        await workload()
    finally:
        await store.close()
    return statements


def full_scans(db_path: Path, statements: set[str], growing: Callable[[str], bool]) -> dict[str, list[str]]:
    """The statements whose plan reads a ``growing`` table without any index, with the offending steps."""
    explain = sqlite3.connect(db_path)
    scans = {}
    try:
        for sql in statements:
            if not DML.match(sql):
                continue
            plan = [row[3] for row in explain.execute(f"EXPLAIN QUERY PLAN {sql}")]
            bad = [s for s in plan if (m := SCAN.match(s)) and "INDEX" not in s and growing(m.group(1))]
            if bad:
                scans[sql] = bad
    finally:
        explain.close()
    return scans

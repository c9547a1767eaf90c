"""Lock candidates are found by index: the narrowing never hides an overlap, and no statement scans."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teamroom.errors import Invalid, TeamroomError
from teamroom.paths import normalise, overlaps
from teamroom.store import ManualClock, SQLiteStore
from teamroom.store.rules import locks as lock_sql
from teamroom.store.sqlite import migrations, statements
from teamroom.store.tx import Tx
from teamroom.tools import agents
from teamroom.tools import locks as lock_tools
from tests.plans import full_scans, traced

NOW = 1_800_000_000_000

segments = st.sampled_from(["a", "b", "ab", "x.py", "y.md", "*", "*.py", "?", "[ab]", "**", "a*", "*b", "x.*"])
resources = st.lists(segments, min_size=1, max_size=4).map("/".join)


@contextmanager
def _store() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    for _, script in migrations():
        for statement in statements(script):
            conn.execute(statement)
    try:
        yield conn
    finally:
        conn.close()


def _normal(raw: str) -> str | None:
    try:
        return normalise(raw)
    except Invalid:
        return None


@settings(max_examples=150, deadline=None)
@given(st.lists(resources, min_size=1, max_size=25), resources)
def test_a_claim_conflicts_with_exactly_the_live_locks_it_overlaps(held: list[str], wanted: str) -> None:
    held = [r for r in dict.fromkeys(map(_normal, held)) if r is not None]
    wanted = _normal(wanted)
    if wanted is None:
        return
    with _store() as conn:
        tx = Tx(conn, NOW)
        for i, resource in enumerate(held):  # shared locks: they never conflict among themselves
            assert lock_sql.claim(tx, f"holder{i}", [resource], "shared", 60, None).granted
        expected = {r for r in held if overlaps(wanted, r)}

        result = lock_sql.claim(tx, "probe", [wanted], "exclusive", 60, None)
        found = {c.resource for c in result.conflicts}
        assert len(result.conflicts) + result.more_conflicts == len(expected)
        if not result.more_conflicts:
            assert found == expected
        assert result.granted is (not expected)

        listed = lock_sql.list_locks(tx, None, wanted, None, None)
        assert {lock.resource for lock in listed.locks} == expected | ({wanted} if result.granted else set())


async def _workload(store: SQLiteStore, clock: ManualClock) -> None:
    await lock_tools.claim_lock(store, "a", ["src/auth/**", "README.md", "deploy:prod"], reason="r")
    await lock_tools.claim_lock(store, "b", ["src/*/login.py"], mode="shared")
    await lock_tools.claim_lock(store, "b", ["**/*.md", "docs/a.md", "src/billing/"], ttl_seconds=30)
    await lock_tools.claim_lock(store, "b", ["README.md"], wait_seconds=0.01)
    await lock_tools.claim_lock(store, "a", ["src/auth/**"])  # a renewal
    await lock_tools.locks(store, "c", resource="src/**")
    await lock_tools.locks(store, "c", resource="docs/a.md", holder="b")
    await lock_tools.locks(store, None, limit=10)
    await agents.heartbeat(store, "a")
    await agents.agents(store, "c")
    for bad in (["nobody.py"], ["src/auth/**"]):
        with pytest.raises(TeamroomError):
            await lock_tools.release_lock(store, "b", bad)
    await store._write(lock_sql.reassign, "a", "handoff:h1", ["deploy:prod"], None)
    await store._write(lock_sql.reassign, "handoff:h1", "c", None, None)
    clock.advance(60)  # b's locks lapse
    await lock_tools.claim_lock(store, "c", ["docs/**"])  # takes b's over
    await lock_tools.release_lock(store, "a", ["README.md"])
    await lock_tools.release_lock(store, "a")
    clock.advance(2 * 60 * 60)  # the sweep drops what nobody took over
    await agents.heartbeat(store, "c")


@pytest.mark.anyio
async def test_no_lock_statement_scans_the_locks_or_the_events_table(db_path) -> None:
    clock = ManualClock()
    store = SQLiteStore(db_path, clock=clock)
    await store.open()
    statements = await traced(store, lambda: _workload(store, clock))
    assert sum("locks" in sql for sql in statements) > 15, "the workload reached the locks"
    lock_statements = {sql for sql in statements if "locks" in sql}
    assert full_scans(db_path, lock_statements, lambda table: table in ("locks", "events")) == {}

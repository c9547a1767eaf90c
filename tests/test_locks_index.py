"""The index narrowing of lock candidates never hides an overlap: SQL + `overlaps` equals brute force."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

from teamroom.errors import Invalid
from teamroom.paths import normalise, overlaps
from teamroom.store.sql import locks as lock_sql
from teamroom.store.sql.tx import Tx
from teamroom.store.sqlite import migrations, statements

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

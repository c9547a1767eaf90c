"""Lock candidates on PostgreSQL: the dialect's narrowing (LIKE where SQLite has GLOB, byte order
for the ranges) never hides an overlap. The same properties as tests/test_locks_index.py, each
example in a transaction of its own that is rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest.mock import patch

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teamroom import paths
from teamroom.errors import Invalid
from teamroom.paths import normalise, overlaps
from teamroom.store.postgres.store import PostgresStore
from teamroom.store.postgres.tx import Connection, PgTx, postgres_queries, row_factory
from teamroom.store.rules import locks as lock_sql
from tests.test_locks_index import BROAD, NEAR, NOW, _normal, glob_and_a_path_it_matches, resources

EXAMPLES = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[psycopg.Connection]:
    import anyio

    async def migrate() -> None:
        async with PostgresStore(pg_url):
            pass

    anyio.run(migrate)
    with psycopg.connect(pg_url, autocommit=True, row_factory=row_factory) as conn:
        yield conn


@contextmanager
def _tx(conn: psycopg.Connection) -> Iterator[PgTx]:
    conn.execute("BEGIN")
    try:
        yield PgTx(Connection(conn), NOW, queries=postgres_queries())
    finally:
        conn.execute("ROLLBACK")


@EXAMPLES
@given(st.lists(resources, min_size=1, max_size=25), resources)
def test_a_claim_conflicts_with_exactly_the_live_locks_it_overlaps(pg_conn, held: list[str], wanted: str) -> None:
    held = [r for r in dict.fromkeys(map(_normal, held)) if r is not None]
    wanted = _normal(wanted)
    if wanted is None:
        return
    with _tx(pg_conn) as tx:
        for i, resource in enumerate(held):
            assert lock_sql.claim(tx, f"holder{i}", [resource], "shared", 60, None).granted
        expected = {r for r in held if overlaps(wanted, r)}
        result = lock_sql.claim(tx, "probe", [wanted], "exclusive", 60, None)
        assert len(result.conflicts) + result.more_conflicts == len(expected)
        if not result.more_conflicts:
            assert {c.resource for c in result.conflicts} == expected
        listed = lock_sql.list_locks(tx, None, wanted, None, None)
        assert {lock.resource for lock in listed.locks} == expected | ({wanted} if result.granted else set())


@settings(EXAMPLES, max_examples=200)
@given(glob_and_a_path_it_matches(), st.lists(resources, max_size=6))
def test_the_narrowing_never_hides_a_path_a_glob_matches(pg_conn, pair: tuple[str, str], others: list[str]) -> None:
    glob, path = pair
    try:
        path = normalise(path)
    except Invalid:
        return
    if paths.parse(path).kind != "path" or not overlaps(glob, path):
        return
    others = [r for r in dict.fromkeys(map(_normal, others)) if r is not None and r not in (glob, path)]
    for held, wanted in ((path, glob), (glob, path)):
        with _tx(pg_conn) as tx:
            for i, resource in enumerate([*others, held]):
                assert lock_sql.claim(tx, f"holder{i}", [resource], "shared", 60, None).granted
            result = lock_sql.claim(tx, "probe", [wanted], "exclusive", 60, None)
            assert held in {c.resource for c in result.conflicts}, (held, wanted, result.conflicts)
            assert held in {lock.resource for lock in lock_sql.list_locks(tx, None, wanted, None, None).locks}


@settings(EXAMPLES, max_examples=150)
@given(
    st.lists(st.tuples(st.one_of(NEAR, NEAR, BROAD, resources), st.sampled_from(["h0", "h1", "h2"]), st.booleans())),
    st.one_of(BROAD, BROAD, NEAR, resources),
    st.sampled_from([None, "h1"]),
    st.sampled_from([None, 1, 3]),
)
def test_a_listing_is_the_live_overlapping_locks_by_resource_then_token_in_byte_order(
    pg_conn, held: list[tuple[str, str, bool]], wanted: str, holder: str | None, limit: int | None
) -> None:
    wanted = _normal(wanted)
    if wanted is None:
        return
    with _tx(pg_conn) as tx:
        for resource, owner, live in held:  # shared: they never conflict; the expired ones lapsed a minute ago
            resource = _normal(resource)
            if resource is not None:
                tx.now = NOW if live else NOW - 120_000
                lock_sql.claim(tx, owner, [resource], "shared", 60, None)
        tx.now = NOW
        rows = pg_conn.execute("SELECT resource, holder, token, expires_at FROM locks").fetchall()
        expected = sorted(
            (row["resource"].encode(), row["token"])
            for row in rows
            if row["expires_at"] > NOW and holder in (None, row["holder"]) and overlaps(wanted, row["resource"])
        )
        for page in (lock_sql.PAGE, 1):  # one candidate a page, and a holder's locks are then too many to decide
            with patch.object(lock_sql, "PAGE", page):
                listed = lock_sql.list_locks(tx, None, wanted, holder, limit)
            assert [(lock.resource.encode(), lock.token) for lock in listed.locks] == expected[:limit]
            assert listed.more == len(expected) - len(listed.locks)

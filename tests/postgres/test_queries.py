"""The PostgreSQL dialect: the same named queries as SQLite's, each valid on a migrated store, and
the rules' ``?N`` parameters translated to psycopg's."""

from __future__ import annotations

import re

import pytest

from teamroom.store.postgres.tx import postgres_queries, translate
from teamroom.store.tx import sqlite_queries


def test_the_postgres_dialect_names_exactly_the_queries_of_the_sqlite_dialect():
    sqlite, postgres = set(sqlite_queries()), set(postgres_queries())
    assert sqlite - postgres == set(), "queries.sql of sqlite names these; postgres/queries.sql must too"
    assert postgres - sqlite == set(), "postgres/queries.sql names these; no rule uses them on sqlite"


def test_numbered_parameters_become_named_placeholders_used_as_often_as_written():
    q = translate("SELECT ?2, ?1 FROM t WHERE a = ?1 AND b = ANY(?3::text[])")
    assert q.text == "SELECT %(p2)s, %(p1)s FROM t WHERE a = %(p1)s AND b = ANY(%(p3)s::text[])"
    assert q.bind(("x", "y", ["a"])) == {"p1": "x", "p2": "y", "p3": ["a"]}


def test_plain_parameters_stay_in_order_every_percent_sign_is_escaped_and_quotes_are_left_alone():
    q = translate("INSERT INTO t VALUES (?, ?) -- 100% sure?")
    assert q.text == "INSERT INTO t VALUES (%s, %s) -- 100%% sure?"
    assert translate("SELECT 'a?%' || ? || \"odd?\"").text == "SELECT 'a?%%' || %s || \"odd?\""
    assert translate("SELECT x % 2").text == "SELECT x %% 2"


def test_a_query_may_not_mix_numbered_and_plain_parameters():
    with pytest.raises(ValueError, match="mixes"):
        translate("SELECT ?1, ?")


def test_a_list_in_sqlite_form_reaches_an_array_parameter_as_a_list():
    """rules/cli.py's OnBehalfTx copies a transaction into a plain Tx, whose array() is SQLite's JSON text."""
    q = translate("SELECT 1 WHERE a = ANY(?2::text[]) AND b = ?1")
    assert q.bind(("x", '["a","b"]')) == {"p1": "x", "p2": ["a", "b"]}
    assert q.bind(("[1]", None)) == {"p1": "[1]", "p2": None}


def _dollars(text: str) -> str:
    """psycopg's placeholders as PostgreSQL's own ($1, $2...: one per name, as psycopg sends them), to
    PREPARE a query without running it."""
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${numbers.setdefault(match.group(1) or str(len(numbers)), len(numbers) + 1)}"

    return re.sub(r"%\((\w+)\)s|%s", number, text).replace("%%", "%")


@pytest.mark.anyio
async def test_every_named_query_prepares_on_a_migrated_store(pg_url):
    """Syntax, names and parameter types of every query, including those no other test runs."""
    import psycopg

    from teamroom.store.postgres.store import PostgresStore

    async with PostgresStore(pg_url):
        pass
    failed = {}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name, query in postgres_queries().items():
            result = conn.pgconn.prepare(name.encode(), _dollars(query.text).encode())
            if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
                failed[name] = result.error_message.decode().strip()
    assert failed == {}

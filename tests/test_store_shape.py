"""The store's shape holds (issue 10): the rules carry no SQL, every query a rule names exists in the
SQLite dialect, and the dialect holds no query that nothing names."""

from __future__ import annotations

import re
from pathlib import Path

from teamroom.store.tx import sqlite_queries

STORE = Path(__file__).resolve().parents[1] / "src" / "teamroom" / "store"
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|BEGIN|COMMIT)\b")
NAMED = re.compile(r"""["']((?:[a-z_]+)\.[a-z_0-9]+)["']""")


def rule_sources() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted((STORE / "rules").glob("*.py"))}


def test_the_rules_hold_no_sql_and_no_connection():
    for name, text in rule_sources().items():
        assert not SQL_WORDS.search(text), f"rules/{name} holds SQL: {SQL_WORDS.search(text).group(0)!r}"
        assert ".conn" not in text and "sqlite3" not in text, f"rules/{name} reaches past the Tx"


def test_every_query_a_rule_names_is_in_the_dialect_and_every_query_there_is_named():
    queries = set(sqlite_queries())
    sources = [*rule_sources().values(), (STORE / "tx.py").read_text(encoding="utf-8")]
    named = {name for text in sources for name in NAMED.findall(text) if name.split(".")[0] in {
        q.split(".")[0] for q in queries
    }}
    assert named - queries == set(), "named by a rule but missing from sqlite/queries.sql"
    assert queries - named == set(), "in sqlite/queries.sql but named by no rule"

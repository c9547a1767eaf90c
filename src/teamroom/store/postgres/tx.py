"""PostgreSQL under the rules' `Tx`: the dialect's named queries, rows shaped like sqlite3.Row, and a
psycopg connection seen through the sqlite3 calls `Tx` makes.

The rules write parameters as SQLite does (``?N`` numbered, or ``?`` in order). Each query of
``postgres/queries.sql`` is translated once, when the file is loaded, into psycopg's placeholders
(``%(pN)s``: a parameter used twice is one server-side ``$N``, so PostgreSQL infers one type for
it), with every ``%`` doubled (psycopg reads it even inside quotes). A list reaches PostgreSQL as
an array (`PgTx.array`); its queries say the array's type (``?3::text[]``), and so must every
parameter that can be NULL where nothing else tells its type (``?2::text IS NULL``): psycopg sends
text and NULL untyped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import psycopg

from teamroom.store.tx import Tx, load_queries

# ``?``, ``?N``, a ``%``, and what hides them: quoted strings and names, comments, $$-bodies.
_TOKEN = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|(\$[A-Za-z_]*\$).*?\1|\?(\d*)(::\w+\[\])?|%""",
    re.DOTALL,
)


class Query:
    """One query in psycopg's form, and how the rules' parameters map onto it."""

    __slots__ = ("arrays", "numbered", "text")

    def __init__(self, text: str, numbered: tuple[int, ...] | None, arrays: frozenset[int]) -> None:
        self.text = text
        self.numbered = numbered  # the ?N used (a name each); None: plain ? in order
        self.arrays = arrays  # positions (0-based) read as arrays

    def bind(self, params: Sequence[Any]) -> Sequence[Any] | dict[str, Any]:
        if self.arrays:
            params = [_as_list(v) if i in self.arrays else v for i, v in enumerate(params)]
        if self.numbered is None:
            return params
        return {f"p{n}": params[n - 1] for n in self.numbered}


def _as_list(value: Any) -> Any:
    # A JSON text where an array is read: `Tx.array`'s SQLite form, from a Tx that is not a PgTx (no
    # rule makes one since `Tx.act_for` replaced a copying wrapper; kept as a guard). Decoded, the same list.
    return json.loads(value) if isinstance(value, str) else value


def translate(sql: str) -> Query:
    """``sql`` with SQLite's ``?N`` / ``?`` made psycopg's, ``%`` escaped; refused if it mixes the two."""
    numbered: set[int] = set()
    plain = 0
    arrays: set[int] = set()

    def replace(match: re.Match[str]) -> str:
        nonlocal plain
        token = match.group(0)
        if token == "%":
            return "%%"
        if not token.startswith("?"):
            return token.replace("%", "%%")  # psycopg reads % everywhere, inside quotes and comments too
        digits, cast = match.group(2), match.group(3) or ""
        if digits:
            numbered.add(int(digits))
            if cast:
                arrays.add(int(digits) - 1)
            return f"%(p{digits})s{cast}"
        if cast:
            arrays.add(plain)
        plain += 1
        return f"%s{cast}"

    text = _TOKEN.sub(replace, sql)
    if numbered and plain:
        raise ValueError(f"query mixes ?N and ? parameters: {sql[:80]!r}")
    return Query(text, tuple(sorted(numbered)) if numbered else None, frozenset(arrays))


@cache
def postgres_queries() -> dict[str, Query]:
    """The PostgreSQL dialect's named queries (store/postgres/queries.sql), translated once per process."""
    text = (Path(__file__).parent / "queries.sql").read_text(encoding="utf-8")
    return {name: translate(sql) for name, sql in load_queries(text).items()}


class Row:
    """A result row read by position (``row[0]``) or by column (``row["id"]``), as sqlite3.Row is;
    ``dict(row)`` works too."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=False))!r})"


def row_factory(cursor: psycopg.Cursor[Any]):
    """psycopg's row factory for `Row`: the column index is built once per result."""
    index: dict[str, int] = {}
    for i, column in enumerate(cursor.description or ()):
        index.setdefault(column.name, i)  # a repeated name reads the first, as sqlite3.Row does
    return lambda values: Row(values, index)


class Connection:
    """A psycopg connection with the two calls `Tx` makes of sqlite3's (``execute``, ``executemany``),
    each taking one of the dialect's translated queries."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, query: Query, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(query.text, query.bind(params))

    def executemany(self, query: Query, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor()
        cursor.executemany(query.text, [query.bind(row) for row in rows])
        return cursor


class PgTx(Tx):
    """`Tx` on PostgreSQL: the same verbs; a list parameter is a PostgreSQL array (of pairs: a
    two-dimensional one)."""

    __slots__ = ()

    @staticmethod
    def array(values: Iterable[Any]) -> list[Any]:
        return [list(v) if isinstance(v, tuple) else v for v in values]

"""Storage: the `Store` contract (`base`), its shared rules (`rules`) and its backends (`sqlite`, `postgres`).

`open_store` is the one place a store is built: the server, the CLI, the dashboard and the demo
call it with what the user gave (``--db``, ``TEAMROOM_DB``), and the hooks call `open_direct` for
the synchronous one-shot form. The names load on first use (PEP 562), so a hook importing this
package pays for neither anyio nor pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teamroom.errors import Invalid

if TYPE_CHECKING:
    from teamroom.store.base import Clock, ManualClock, Store, SystemClock
    from teamroom.store.postgres.store import PostgresStore
    from teamroom.store.sqlite.direct import DirectStore
    from teamroom.store.sqlite.store import SQLiteStore

__all__ = [
    "Clock", "ManualClock", "PostgresStore", "SQLiteStore", "Store", "SystemClock", "open_direct", "open_store",
    "parse_target",
]  # fmt: skip

SQLITE_SCHEME = "sqlite://"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")  # both are libpq's


def parse_target(target: str | os.PathLike[str]) -> tuple[str, Path | str]:
    """Which backend ``target`` names, and where: ``("sqlite", path)`` or ``("postgresql", url)``.

    A plain path, or a URL ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` (three slashes,
    then the path, as SQLAlchemy spells it), or ``postgresql://USER@HOST:PORT/DB`` (libpq's URL,
    kept as given: libpq reads it when the store opens). Any other scheme is refused with what to
    pass instead.
    """
    text = os.fspath(target)
    if text.startswith(POSTGRES_SCHEMES):
        return "postgresql", text
    if text.startswith("sqlite:"):
        rest = text.removeprefix(SQLITE_SCHEME) if text.startswith(SQLITE_SCHEME) else ""
        if not rest.startswith("/") or rest == "/":
            raise Invalid(f"store URL {text!r}: write sqlite:///PATH (three slashes, then the path)")
        return "sqlite", Path(rest[1:])
    scheme = text.partition("://")[0] if "://" in text else ""
    if scheme and scheme.isascii() and scheme.replace("+", "").isalnum():
        raise Invalid(
            f"store URL {text!r}: this teamroom has no {scheme!r} backend;"
            " pass a file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
        )
    return "sqlite", Path(text)


def open_store(target: str | os.PathLike[str], *, durability: str = "normal", clock: Clock | None = None) -> Store:
    """The store ``target`` names (see `parse_target`), not yet opened: ``await store.open()`` or ``async with``."""
    backend, where = parse_target(target)
    if backend == "postgresql":
        from teamroom.store.postgres.store import PostgresStore

        return PostgresStore(str(where), durability=durability, clock=clock)
    from teamroom.store.sqlite.store import SQLiteStore

    return SQLiteStore(where, durability=durability, clock=clock)


def open_direct(target: str | os.PathLike[str], **options: Any) -> DirectStore | None:
    """The synchronous one-shot form of an existing store, for the hooks; None when there is none yet.

    A PostgreSQL store has no such form yet: the hooks say nothing there.
    """
    backend, where = parse_target(target)
    if backend == "postgresql":
        return None
    from teamroom.store.sqlite.direct import DirectStore

    return DirectStore.open(Path(where), **options)


def __getattr__(name: str) -> Any:
    if name == "SQLiteStore":
        from teamroom.store.sqlite.store import SQLiteStore

        return SQLiteStore
    if name == "PostgresStore":
        from teamroom.store.postgres.store import PostgresStore

        return PostgresStore
    if name in ("Clock", "ManualClock", "Store", "SystemClock"):
        from teamroom.store import base

        return getattr(base, name)
    raise AttributeError(f"module 'teamroom.store' has no attribute {name!r}")

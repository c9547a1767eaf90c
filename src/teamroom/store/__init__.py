"""Storage: the `Store` interface and its SQLite implementation.

The names load on first use (PEP 562), so a short-lived process such as a hook can import
`teamroom.store.sqlite.direct` without paying for anyio and pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teamroom.store.base import Clock, ManualClock, Store, SystemClock
    from teamroom.store.sqlite.store import SQLiteStore

__all__ = ["Clock", "ManualClock", "SQLiteStore", "Store", "SystemClock"]


def __getattr__(name: str) -> Any:
    if name == "SQLiteStore":
        from teamroom.store.sqlite.store import SQLiteStore

        return SQLiteStore
    if name in ("Clock", "ManualClock", "Store", "SystemClock"):
        from teamroom.store import base

        return getattr(base, name)
    raise AttributeError(f"module 'teamroom.store' has no attribute {name!r}")

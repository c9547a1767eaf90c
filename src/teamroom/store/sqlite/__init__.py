"""The SQLite backend: one WAL file shared by every teamroom process on the machine.

`store` holds `SQLiteStore` (asynchronous, for servers); `direct` the synchronous one-shot form
the hooks use. Names load on first use (PEP 562), so a hook importing `direct` pays for neither
anyio nor pydantic.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SQLiteStore", "migrations", "statements"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from teamroom.store.sqlite import store

        return getattr(store, name)
    raise AttributeError(f"module 'teamroom.store.sqlite' has no attribute {name!r}")

"""The PostgreSQL backend: one database shared by teamroom servers on many machines.

`store` holds `PostgresStore`; `tx` the dialect's named queries and the rows and connection the
rules' `Tx` runs on; `listen` the thread that wakes waiters on another server's commit. Names load
on first use (PEP 562): importing the package does not import psycopg.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PostgresStore", "migrations"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from teamroom.store.postgres import store

        return getattr(store, name)
    raise AttributeError(f"module 'teamroom.store.postgres' has no attribute {name!r}")

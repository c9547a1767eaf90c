"""The store contract: every test under tests/contract/ runs once per Store backend.

A backend is a fixture named ``<name>_backend`` that returns a factory of unopened Stores, each
a new client of one and the same store (as two server processes are), on the shared ManualClock.
Adding a backend is adding its name to BACKENDS and its fixture here (the PostgreSQL issue adds
``postgres``: a fresh database per test, dropped afterwards).

Tests open stores themselves (``async with opened(store):``, see support.py) rather than through a
yield fixture: pytest-asyncio runs a fixture's setup, the test and the teardown in three tasks, and
a backend whose ``open()`` enters a cancel scope or a task group must leave it in the task that
entered it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from teamroom.store import ManualClock, SQLiteStore, Store

BACKENDS = ["sqlite"]

StoreFactory = Callable[[], Store]


@pytest.fixture
def sqlite_backend(tmp_path: Path, clock: ManualClock) -> StoreFactory:
    path = tmp_path / "store.db"
    return lambda: SQLiteStore(path, clock=clock)


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    """Another client of the test's store, unopened: a second process's view of the same data."""
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    """The test's store, unopened."""
    return make_store()

"""The store contract: every test under tests/contract/ runs once per Store backend.

A backend is a fixture named ``<name>_backend`` that gives the target `open_store` takes for a
fresh, empty store of that kind. ``make_store()`` builds a new client of that one store (as each
server process is one), on the test's ManualClock. Adding a backend is adding its name to BACKENDS
and its fixture here; ``postgres`` is a fresh schema per test on the session's PostgreSQL, dropped
afterwards.

Tests open stores themselves (``async with store:``) rather than through a yield fixture:
pytest-asyncio runs a fixture's setup, the test and the teardown in three tasks, and a backend whose
``open()`` enters a cancel scope or a task group must leave it in the task that entered it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from teamroom.store import ManualClock, Store, open_store

BACKENDS = ["sqlite", "postgres"]

StoreFactory = Callable[[], Store]


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def postgres_backend(pg_url: str) -> str:
    """A schema of its own on the session's PostgreSQL (tests/pg.py): skipped, saying why, where there
    is no PostgreSQL; failed under CI."""
    return pg_url


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, clock: ManualClock) -> StoreFactory:
    """Another client of the test's store, unopened: a second process's view of the same data."""
    target = request.getfixturevalue(f"{request.param}_backend")
    return lambda: open_store(target, clock=clock)


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    """The test's store, unopened."""
    return make_store()

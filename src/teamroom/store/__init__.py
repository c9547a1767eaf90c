"""Storage: the `Store` interface and its SQLite implementation."""

from teamroom.store.base import Clock, ManualClock, Store, SystemClock
from teamroom.store.sqlite import SQLiteStore

__all__ = ["Clock", "ManualClock", "SQLiteStore", "Store", "SystemClock"]

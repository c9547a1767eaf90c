"""Eight server processes on one store: a busy store is never an error (SPEC §6).

Latency percentiles are printed (pytest -s); the longer run with a one-process floor is
``python -m tests.chaos.contention --processes 8 --seconds 30``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.chaos.contention import hammer
from tests.storeview import integrity


@pytest.mark.processes
@pytest.mark.anyio
async def test_eight_processes_hammering_one_store_never_see_a_locked_database_or_a_timeout(tmp_path: Path) -> None:
    db = tmp_path / "teamroom.db"

    result = await hammer(db, processes=8, seconds=3)

    print(result.table())
    assert result.errors == []
    sends = len(result.latencies["send"])
    assert sends > 100, "the processes did not get to hammer"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == sends  # every answered send is stored
    conn.close()
    assert integrity(db) == ["ok"]

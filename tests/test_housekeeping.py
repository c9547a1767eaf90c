"""Expiries happen on time with nobody writing (issue 11 point 4): lapsed leases, TTL expiries and the
dead letters they cause are applied by a server's once-a-second look, not only by the next write."""

from __future__ import annotations

import sqlite3
import time

import anyio
import pytest

from teamroom.store import SQLiteStore

pytestmark = pytest.mark.anyio


def kinds(db) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT kind FROM events ORDER BY id")]
    finally:
        conn.close()


async def test_a_lapsed_lease_and_a_ttl_expiry_are_applied_with_nobody_writing(db_path, clock):
    async with SQLiteStore(db_path, clock=clock) as store:
        for name in ("lead", "w"):
            await store.register(name, None, None, None)
        opts = dict(subject=None, kind="task", payload=None, priority=1, thread_id=None, reply_to=None,
                    max_attempts=1, idempotency_key=None)  # fmt: skip
        await store.send("lead", ["w"], "leased, then left", ttl_seconds=None, **opts)
        await store.lease("w", 1, 60, None, None)
        await store.send("lead", ["w"], "never polled", ttl_seconds=30, **opts)
        before = kinds(db_path)
        clock.advance(61)  # both are due now; nobody calls the store
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.keep_house, 0.01)
            with anyio.fail_after(10):
                while kinds(db_path).count("dead") + kinds(db_path).count("expired") < 2:
                    await store.wait_for_change(store.change_token(), 1)
            tg.cancel_scope.cancel()
    new = kinds(db_path)[len(before) :]
    assert sorted(k for k in new if k in ("dead", "expired")) == ["dead", "expired"], new
    assert new.count("send") == 2, "each sender is told (delivery_failed)"


@pytest.mark.processes
async def test_a_sender_waiting_in_poll_hears_its_message_expired_within_seconds_with_nobody_writing(team):
    sender, _ = team.acting("sender", "away")
    await sender("register")
    away = team.name("away")
    await team.servers[1]("register", agent=away)
    sent = await sender("send", to=away, body="are you there?", ttl_seconds=1)
    started = time.monotonic()
    got = await sender("poll", wait_seconds=30, kinds=["delivery_failed"])
    waited = time.monotonic() - started
    assert [m["payload"]["message_id"] for m in got["messages"]] == [sent["message_id"]], got
    assert waited < 15, f"heard only after {waited:.1f} s"

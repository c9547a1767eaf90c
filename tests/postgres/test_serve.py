"""`teamroom serve --db postgresql://...`: several servers on one database, and a database that is
not there or goes away."""

from __future__ import annotations

import asyncio

import pytest

from teamroom.errors import StoreUnavailable
from teamroom.store import ManualClock
from teamroom.store.postgres.store import PostgresStore
from tests.procs import served
from tests.test_faults import assert_one_clear_line, start_and_fail

pytestmark = pytest.mark.anyio


def test_a_server_whose_database_is_not_there_says_so_in_one_line_and_exits():
    result = start_and_fail("postgresql://teamroom@127.0.0.1:1/teamroom")
    assert_one_clear_line(result, "refused", "store postgresql://teamroom@127.0.0.1:1/teamroom", "Connection refused")


@pytest.mark.processes
async def test_servers_sharing_a_database_hand_messages_across_and_wake_a_waiting_poll(pg_url):
    async with served(pg_url, agent="lead") as lead, served(pg_url, agent="builder") as builder:
        await lead("register", role="lead")
        await builder("register", role="builder")
        poll = asyncio.create_task(builder("poll", wait_seconds=30))
        done, _ = await asyncio.wait({poll}, timeout=0.5)
        assert not done, "nothing was sent yet: the poll waits"
        await lead("send", to="@builders", body="build the parser")
        async with asyncio.timeout(10):
            got = await poll
        assert [m["body"] for m in got["messages"]] == ["build the parser"]
        assert (await builder("ack", receipts=[got["messages"][0]["receipt"]]))["acked"] == 1


async def test_a_database_that_goes_away_is_one_clear_error_and_once_back_the_store_goes_on(pg_cluster, pg_url):
    if not pg_cluster.private:
        pytest.skip("restarts the server: only a private cluster (not TEAMROOM_TEST_PG_URL's)")
    async with PostgresStore(pg_url, clock=ManualClock()) as store:
        await store.register("a", None, None, None)
        pg_cluster.pg_ctl("-m", "fast", "stop")
        try:
            with pytest.raises(StoreUnavailable) as lost:
                await store.register("b", None, None, None)
        finally:
            pg_cluster.pg_ctl("start")
        token = store.change_token()
        await store.register("b", None, None, None)
        names = [a.name for a in (await store.agents(None, None, None, True)).agents]
        async with asyncio.timeout(10):
            await store.wait_for_change(token, 30)
    text = str(lost.value)
    assert text.startswith("unavailable: lost the database and cannot reconnect: store postgresql://")
    assert "\n" not in text and names == ["a", "b"]

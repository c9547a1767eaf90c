"""What is PostgreSQL's own in the PostgreSQL store: migrations under an advisory lock, the
database's clock, byte order whatever the database's collation, the events log read in commit
order, waits through LISTEN/NOTIFY, and one clear line when the database is not there.

The contract every store keeps is tests/contract/, run on this backend too.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from teamroom.errors import StoreUnavailable
from teamroom.store import ManualClock, open_store
from teamroom.store.postgres.store import PostgresStore, migrations
from tests import pg

pytestmark = pytest.mark.anyio

LATEST = migrations()[-1][0]


def _sql(url: str, query: str, *params):
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else None


async def _register(store, *names: str) -> None:
    for name in names:
        await store.register(name, None, None, None)


async def _send(store, sender: str, to: str, body: str) -> None:
    await store.send(sender, [to], body, subject=None, kind="text", payload=None, priority=1, thread_id=None,
                     reply_to=None, ttl_seconds=None, max_attempts=5, idempotency_key=None)  # fmt: skip


async def test_servers_that_start_together_on_a_fresh_database_migrate_it_once(pg_url):
    stores = [PostgresStore(pg_url, clock=ManualClock()) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await _register(stores[0], "a")
        assert [a.name for a in (await stores[3].agents(None, None, None, True)).agents] == ["a"]
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    assert _sql(pg_url, "SELECT version FROM teamroom_schema") == [(LATEST,)]


async def test_a_store_with_a_newer_schema_is_refused_and_left_as_it_was(pg_url):
    async with PostgresStore(pg_url):
        pass
    _sql(pg_url, "UPDATE teamroom_schema SET version = 99")
    tables = _sql(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")
    with pytest.raises(StoreUnavailable, match=rf"schema version 99, newer than this teamroom knows \({LATEST}\)"):
        await PostgresStore(pg_url).open()
    assert _sql(pg_url, "SELECT version FROM teamroom_schema") == [(99,)]
    assert _sql(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1") == tables


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://teamroom@127.0.0.1:1/teamroom", "Connection refused"),
        ("postgresql://[::1/db", "not a PostgreSQL URL"),
        ("postgresql://u@h/db?colour=blue", "invalid URI query parameter"),
    ],
)
async def test_a_database_that_cannot_be_reached_is_one_clear_line(url, words):
    with pytest.raises(StoreUnavailable) as refused:
        await open_store(url).open()
    text = str(refused.value)
    assert text.startswith("unavailable: store postgresql://") and words in text and "\n" not in text


async def test_a_database_that_does_not_exist_says_how_to_create_it(pg_cluster):
    url = pg_cluster.url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreUnavailable, match='database "no_such_db" does not exist: create the database'):
        await PostgresStore(url).open()


def test_a_password_in_the_url_is_never_shown():
    store = PostgresStore("postgresql://lead:s3cret@db:5432/team?password=other&sslmode=require")
    assert store.where == "postgresql://lead:***@db:5432/team?password=***&sslmode=require"


async def test_without_a_clock_the_time_is_the_databases_not_this_machines(pg_cluster, pg_url):
    """The store's schema comes first on its search_path here, so its clock_timestamp() is the database's clock."""
    schema = pg_url.rsplit("%3D", 1)[1]
    _sql(
        pg_url,
        f"CREATE FUNCTION {schema}.clock_timestamp() RETURNS timestamptz LANGUAGE sql"
        " AS $$ SELECT timestamptz '2031-02-03 04:05:06.789+00' $$",
    )
    url = pg.with_schema(pg_cluster.url, f"{schema},pg_catalog")
    async with PostgresStore(url) as store:
        beat = await store.heartbeat("a", None, None, None)
        await _send(store, "a", "a", "later")
        await store.nack("a", (await store.lease("a", 1, 60, None, None)).messages[0].receipt, None, 30)
        wait = await store.next_ready_in("a", None, None)
    assert beat.server_time == "2031-02-03T04:05:06.789Z"
    assert 25 < wait <= 30  # from the database's now, carried forward by this machine's monotonic clock


async def test_names_and_resources_sort_in_byte_order_whatever_the_databases_collation(pg_cluster, pg_url):
    collation = _sql(pg_cluster.url, "SELECT 'B' < 'a'")
    assert collation == [(False,)], "the test cluster's default collation must not be byte order"
    async with PostgresStore(pg_url, clock=ManualClock()) as store:
        await _register(store, "a", "B", "_x", "Z9")
        names = [a.name for a in (await store.agents(None, None, None, True)).agents]
    assert names == sorted(names) == ["B", "Z9", "_x", "a"]


async def test_a_reader_following_the_events_log_never_skips_one_while_servers_write(pg_url):
    """Event ids are handed out before commit; the write lock makes them visible in id order."""
    clock = ManualClock()
    writers = [PostgresStore(pg_url, clock=clock) for _ in range(3)]
    reader = PostgresStore(pg_url, clock=clock)
    for s in (*writers, reader):
        await s.open()
    try:
        seen: list[int] = []
        done = asyncio.Event()

        async def write(store: PostgresStore, n: int) -> None:
            for i in range(40):
                await store.heartbeat(f"w{n}", "working", f"task {i}", None)

        async def follow() -> None:
            while True:
                finished = done.is_set()
                got = (await reader.events(seen[-1] if seen else 0, 1000)).events
                seen.extend(e.id for e in got)
                if finished and not got:
                    return

        follower = asyncio.create_task(follow())
        await asyncio.gather(*(write(s, n) for n, s in enumerate(writers)))
        done.set()
        await follower
        every = [e.id for e in (await reader.events(0, 100_000)).events]
    finally:
        for s in (*writers, reader):
            await s.close()
    assert len(every) >= 3 * 40 and seen == every


async def test_two_servers_leasing_at_once_never_hand_one_delivery_to_both(pg_url):
    clock = ManualClock()
    a, b = PostgresStore(pg_url, clock=clock), PostgresStore(pg_url, clock=clock)
    async with a, b:
        await _register(a, "sender", "worker")
        for i in range(60):
            await _send(a, "sender", "worker", f"job {i}")

        async def drain(store: PostgresStore) -> list[str]:
            got = []
            while batch := (await store.lease("worker", 3, 300, None, None)).messages:
                got += [m.message_id for m in batch]
            return got

        first, second = await asyncio.gather(drain(a), drain(b))
    assert sorted(first + second) == sorted({*first, *second}) and len(first + second) == 60


def _backends(url: str, application: str) -> list[int]:
    """The server processes of the connections named ``application`` (teamroom, teamroom listen)."""
    query = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
    return [r[0] for r in _sql(url, query, application)]


async def test_a_server_whose_connection_is_cut_reconnects_and_goes_on(pg_url):
    async with PostgresStore(pg_url, clock=ManualClock()) as store:
        await _register(store, "a")
        for pid in _backends(pg_url, "teamroom"):  # its transactions' connection, not the listener's
            _sql(pg_url, "SELECT pg_terminate_backend(%s)", pid)
        await _register(store, "b")
        names = [a.name for a in (await store.agents(None, None, None, True)).agents]
    assert names == ["a", "b"]


async def test_waiters_wake_when_the_notifications_connection_is_cut_and_again_once_it_is_back(pg_url):
    clock = ManualClock()
    elsewhere = f"{pg_url}&application_name=elsewhere"  # another URL: a listener of its own, as in another process
    async with PostgresStore(pg_url, clock=clock) as store, PostgresStore(elsewhere, clock=clock) as other:
        await _register(store, "a")
        token = store.change_token()
        cut = _backends(pg_url, "teamroom listen")
        assert len(cut) == 1
        _sql(pg_url, "SELECT pg_terminate_backend(%s)", cut[0])
        async with asyncio.timeout(10):
            assert await store.wait_for_change(token, 30), "a lost connection wakes waiters: they recheck"
            while set(_backends(pg_url, "teamroom listen")) - set(cut) == set():  # listening again
                await store.wait_for_change(store.change_token(), 0.2)
            token = store.change_token()
            while await store.wait_for_change(token, 0.3):  # the wake-ups of reconnecting have come
                token = store.change_token()
        await _register(other, "b")
        async with asyncio.timeout(5):
            assert await store.wait_for_change(token, 30)


async def test_a_commit_of_this_process_is_in_every_token_taken_after_it_returned(pg_url):
    """Stores of one process on one URL share one listener, which counts their commits at once."""
    clock = ManualClock()
    async with PostgresStore(pg_url, clock=clock) as store, PostgresStore(pg_url, clock=clock) as other:
        for i in range(20):
            token = store.change_token()
            await _register(other, f"b{i}")
            assert store.change_token() != token
            token = store.change_token()
            assert not await store.wait_for_change(token, 0.05), "its own notification is not news to it"


async def test_a_human_acting_for_an_agent_leases_by_kind_and_sends_to_a_role(pg_url):
    """The CLI's verbs run the rules on a copy of the transaction (rules/cli.py's OnBehalfTx), whose lists
    arrive in SQLite's form: the same rows come back."""
    async with PostgresStore(pg_url, clock=ManualClock()) as store:
        await store.register("lead", "lead", None, None)
        await store.register("builder-1", "builder", None, None)
        sent = await store.send_on_behalf("human", "lead", ["@builders"], "build it", subject=None, kind="assign",
                                          payload=None, priority=1, thread_id=None, reply_to=None, ttl_seconds=None,
                                          max_attempts=5, idempotency_key=None)  # fmt: skip
        acked, leased = await store.ack_then_lease("builder-1", [], 5, 60, ["assign"], None, by="human")
        events = (await store.events(0, 100, None, ["send", "lease"])).events
    assert sent.recipients == ["builder-1"] and acked == 0 and [m.body for m in leased.messages] == ["build it"]
    assert [(e.kind, e.data["by"]) for e in events] == [("send", "human"), ("lease", "human")]


async def test_only_one_gc_runs_on_a_store_at_a_time_however_many_servers_share_it(pg_url, tmp_path, monkeypatch):
    from teamroom.errors import Conflict

    monkeypatch.setenv("TEAMROOM_ARCHIVE_DIR", str(tmp_path / "archive"))
    async with PostgresStore(pg_url, clock=ManualClock()) as one, PostgresStore(pg_url, clock=ManualClock()) as two:
        holder = one._gc_lock()  # as one's gc holds it while it runs
        assert holder is not None
        try:
            with pytest.raises(Conflict, match="another teamroom process is running gc"):
                await two.gc(14, by="human")
        finally:
            holder.close()  # its connection gone (a gc killed midway), the lock is free again
        result = await two.gc(14, by="human")
    assert (result.deliveries, result.events, result.archive) == (0, 0, str(tmp_path / "archive"))


async def test_events_are_deleted_only_once_archived(pg_url):
    async with PostgresStore(pg_url, clock=ManualClock()) as store:
        await store.register("lead", "lead", None, None)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="only archived ones are deleted"):
            conn.execute("DELETE FROM events")
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
            conn.execute("UPDATE events SET kind = 'x'")
        conn.execute("UPDATE archive SET events_through = (SELECT max(id) FROM events)")
        assert conn.execute("DELETE FROM events").rowcount >= 1


async def test_stats_sizes_the_schema_and_backup_points_at_pg_dump(pg_url, tmp_path, monkeypatch):
    from teamroom.errors import Invalid

    monkeypatch.delenv("TEAMROOM_ARCHIVE_DIR")  # the default: DATABASE.SCHEMA.archive in the working directory
    monkeypatch.chdir(tmp_path)

    async with PostgresStore(pg_url, clock=ManualClock()) as store:
        stats = await store.stats()
        with pytest.raises(Invalid, match="pg_dump --schema=") as refused:
            await store.backup(tmp_path / "copy")
    assert stats.store.bytes > 0 and stats.store.archive.endswith(".archive")
    assert "\n" not in str(refused.value)


def test_the_operators_verbs_run_from_the_cli_on_postgresql(pg_url, capsys, tmp_path, monkeypatch):
    from teamroom.cli import main
    from tests.test_cli import run_json

    monkeypatch.setenv("TEAMROOM_ARCHIVE_DIR", str(tmp_path / "archive"))

    async def team():
        async with PostgresStore(pg_url) as store:
            await store.register("b1", "builder", None, None)
            await store.claim_lock("b1", ["src/a.py"], "exclusive", 600, None)

    asyncio.run(team())
    db = ["--db", pg_url]
    assert run_json(capsys, "stats", *db)["store"]["bytes"] > 0
    assert run_json(capsys, "dead", *db)["dead"] == []
    assert run_json(capsys, "gc", "--dry-run", *db)["dry_run"] is True
    released = run_json(capsys, "locks", "release", "src/a.py", "--force", *db)
    assert [(r["resource"], r["holder"]) for r in released["released"]] == [("src/a.py", "b1")]
    assert run_json(capsys, "agents", "forget", "b1", "--force", *db)["agent"] == "b1"
    assert main(["backup", str(tmp_path / "copy"), *db]) == 2
    assert "pg_dump --schema=" in capsys.readouterr().err

"""Operations on the SQLite store (SPEC §9): the audit log's archive, backups, doctor, the operator's commands at
the CLI, and the gc a server runs by itself. What every backend shares is in tests/contract/test_ops.py."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from mcp import Client

from teamroom.cli import main
from teamroom.config import Settings
from teamroom.doctor import diagnose
from teamroom.errors import Invalid
from teamroom.init import init
from teamroom.schemas import Event
from teamroom.server import build_server
from teamroom.store import ManualClock, SQLiteStore, archive, base
from tests.conftest import Caller
from tests.contract.support import claim, events, lease, register, send
from tests.storeview import integrity, snapshot
from tests.test_cli import run_json

DAY = 86_400
TEAMROOM = str(Path(sys.executable).with_name("teamroom"))


def _ms(*when: int) -> int:
    return int(datetime(*when, tzinfo=UTC).timestamp() * 1000)


async def _busy_day(store: SQLiteStore, clock: ManualClock, n: int = 3) -> None:
    """Some of everything the log records: registrations, messages leased, acked and dead, a lock."""
    await register(store, "lead", "lead")
    await register(store, "b1", "builder")
    for i in range(n):
        await send(store, "lead", "b1", f"job {i}")
    receipts = [m.receipt for m in (await lease(store, "b1")).messages]
    await store.ack("b1", receipts)
    await send(store, "lead", "b1", "doomed", max_attempts=1)
    [doomed] = (await lease(store, "b1")).messages
    await store.nack("b1", doomed.receipt, "no", 0)
    await claim(store, "b1", ["src/a.py"])
    clock.advance(1)


def _archived(db: Path) -> list[dict]:
    lines = []
    for path in sorted(db.with_name(f"{db.name}.archive").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


# --- the archive ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_old_events_are_archived_line_for_line_in_their_months_file_and_then_deleted(db_path):
    clock = ManualClock(_ms(2027, 1, 31, 23, 59))
    async with SQLiteStore(db_path, clock=clock) as store:
        await _busy_day(store, clock)
        clock.advance(120)  # into February
        await _busy_day(store, clock)
        old = await events(store)
        clock.advance(15 * DAY)
        await send(store, "lead", "b1", "today's")
        newer = [e for e in await events(store) if e.id > old[-1].id]

        result = await store.gc(14, by="human")

        left = await events(store)
        archived_through = (await store.stats()).events.archived_through
    archive_dir = db_path.with_name(f"{db_path.name}.archive")
    assert sorted(p.name for p in archive_dir.glob("*.jsonl")) == ["events-2027-01.jsonl", "events-2027-02.jsonl"]
    for month in ("2027-01", "2027-02"):
        lines = (archive_dir / f"events-{month}.jsonl").read_text().splitlines()
        assert lines and {json.loads(line)["at"][:7] for line in lines} == {month}
    assert _archived(db_path) == [e.model_dump(mode="json") for e in old], "line for line, as teamroom log --json"
    assert [Event(**line) for line in _archived(db_path)] == old
    assert result.events == len(old) and archived_through == old[-1].id
    assert left[: len(newer)] == newer and left[-1].kind == "gc", "the newer events stay, then gc's own"
    assert min(e.id for e in left) > old[-1].id


class Crash(Exception):
    """Stands for the process dying between the archive's write and the delete."""


@pytest.mark.anyio
async def test_a_crash_between_the_archive_write_and_the_delete_duplicates_lines_at_worst_and_loses_none(
    db_path, clock, monkeypatch
):
    monkeypatch.setattr(base, "GC_EVENTS_PAGE", 5)
    monkeypatch.setattr(base, "GC_SYNC_EVERY", 1)
    sync, synced = archive.Writer.sync, []

    def dies_after_the_second_page(writer):
        sync(writer)
        synced.append(writer)
        if len(synced) == 2:
            raise Crash

    async with SQLiteStore(db_path, clock=clock) as store:
        await _busy_day(store, clock)
        old = await events(store)
        clock.advance(15 * DAY)
        monkeypatch.setattr(archive.Writer, "sync", dies_after_the_second_page)
        with pytest.raises(Crash):
            await store.gc(14, by="human")
        assert [e.id for e in await events(store)][:1] == [old[5].id], "the first page went; the second is still here"
        monkeypatch.setattr(archive.Writer, "sync", sync)
        await store.gc(14, by="human")
        assert not [e for e in await events(store) if e.id <= old[-1].id]
    ids = [line["id"] for line in _archived(db_path)]
    second = [e.id for e in old[5:10]]
    assert ids == [e.id for e in old[:10]] + second + [e.id for e in old[10:]], "the second page twice, none lost"


def test_a_line_cut_short_by_a_crash_is_left_on_a_line_of_its_own(tmp_path):
    directory = tmp_path / "store.db.archive"
    archive.append(directory, {"events-2027-01.jsonl": ['{"id":1}']})
    with open(directory / "events-2027-01.jsonl", "ab") as torn:
        torn.write(b'{"id":2,"at":"20')
    archive.append(directory, {"events-2027-01.jsonl": ['{"id":2}', '{"id":3}']})
    lines = (directory / "events-2027-01.jsonl").read_text().splitlines()
    assert lines == ['{"id":1}', '{"id":2,"at":"20', '{"id":2}', '{"id":3}']


@pytest.mark.anyio
async def test_event_ids_never_repeat_once_the_whole_log_was_trimmed_even_after_a_restart(db_path, clock):
    async with SQLiteStore(db_path, clock=clock) as store:
        await _busy_day(store, clock)
        last = (await events(store))[-1].id
        clock.advance(15 * DAY)
        await store.gc(14, by="human")
        assert [e.kind for e in await events(store)] == ["lock_expired", "gc"], "only what the gc run itself did"
    async with SQLiteStore(db_path, clock=clock) as store:
        await register(store, "c1")
        assert min(e.id for e in await events(store)) > last


@pytest.mark.anyio
async def test_the_store_refuses_to_delete_an_event_the_archive_does_not_hold(db_path, clock):
    async with SQLiteStore(db_path, clock=clock) as store:
        await _busy_day(store, clock)
        clock.advance(15 * DAY)
        await store.gc(14, by="human")
        newest = (await events(store))[-1].id
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events WHERE id = ?", (newest,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET kind = 'x' WHERE id = ?", (newest,))
    conn.close()


# --- backup ---------------------------------------------------------------------------------------


def test_a_backup_taken_while_another_process_writes_passes_integrity_check_and_holds_every_acknowledged_message(
    tmp_path,
):
    db, copy = tmp_path / "teamroom.db", tmp_path / "backup" / "copy.db"
    copy.parent.mkdir()
    acked: list[str] = []
    warmed, stop = threading.Event(), threading.Event()

    async def writer() -> None:  # another connection, as another server process would be
        async with SQLiteStore(db) as store:
            await register(store, "lead")
            await register(store, "b1")
            while not stop.is_set():
                acked.append((await send(store, "lead", "b1", "x" * 2000)).message_id)
                if len(acked) == 300:
                    warmed.set()

    thread = threading.Thread(target=anyio.run, args=(writer,))
    thread.start()
    try:
        assert warmed.wait(60)
        before = list(acked)

        async def take() -> Path:
            async with SQLiteStore(db) as store:
                return await store.backup(copy)

        written = anyio.run(take)
        during = len(acked) - len(before)
    finally:
        stop.set()
        thread.join(60)
    print(f"messages acknowledged while the backup ran: {during}")
    assert written == copy and not copy.with_name("copy.db-wal").exists()
    assert integrity(copy) == ["ok"]
    conn = sqlite3.connect(copy)
    stored = {f"m{r[0]}" for r in conn.execute("SELECT id FROM messages")}
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "one self-contained file"
    conn.close()
    assert set(before) <= stored, f"acknowledged before the backup began, missing from it: {set(before) - stored}"

    async def reopen() -> int:
        async with SQLiteStore(copy) as store:
            return len((await store.inbox("b1", 500)).messages)

    assert anyio.run(reopen) > 0, "the copy is a store teamroom opens"


@pytest.mark.anyio
async def test_a_backup_refuses_a_file_that_exists_and_puts_a_dated_copy_in_a_directory(db_path, tmp_path, clock):
    async with SQLiteStore(db_path, clock=clock) as store:
        await register(store, "lead")
        with pytest.raises(Invalid, match="is the store itself"):
            await store.backup(db_path)
        (tmp_path / "taken.db").write_bytes(b"mine")
        with pytest.raises(Invalid, match="exists"):
            await store.backup(tmp_path / "taken.db")
        (tmp_path / "backups").mkdir()
        written = await store.backup(tmp_path / "backups")
    assert (tmp_path / "taken.db").read_bytes() == b"mine"
    assert written.parent == tmp_path / "backups" and written.name.startswith("teamroom-")
    assert integrity(written) == ["ok"]


# --- doctor ---------------------------------------------------------------------------------------


def _settings(db: Path, origin: str = "flag") -> Settings:
    return Settings(db_path=db, db_origin=origin)


def _levels(report) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in report.findings:
        found.setdefault(f.level, []).append(f"{f.where}: {f.text}")
    return found


def test_doctor_on_a_project_init_set_up_finds_the_store_healthy_and_every_command_resolving(tmp_path):
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    init("claude", project, [TEAMROOM])
    init("codex", project, [TEAMROOM])
    settings = Settings.resolve(None, cwd=project, environ={})
    anyio.run(_open_and_register, settings.db_path)

    report = diagnose(settings, project, home=home, env={"PATH": str(Path(TEAMROOM).parent)})

    levels = _levels(report)
    assert report.ok, levels.get("problem")
    assert any("chosen by the git repository here" in line for line in levels["note"])
    assert any("schema 5" in line for line in levels["ok"])
    assert any("integrity_check: ok" in line for line in levels["ok"])
    assert any(".mcp.json mcpServers.teamroom" in line and "serve" in line for line in levels["ok"])
    assert any("config.toml [mcp_servers.teamroom]" in line for line in levels["ok"])
    assert any("settings.json hooks" in line for line in levels["ok"])
    elsewhere = diagnose(_settings(tmp_path / "other.db"), project, home=home, env={})
    assert any("its agents use the store" in line for line in _levels(elsewhere)["problem"]), (
        "doctor run against another store than the project's agents use says so"
    )


async def _open_and_register(db: Path) -> None:
    async with SQLiteStore(db) as store:
        await register(store, "lead")


def test_doctor_on_a_broken_config_names_the_file_and_exits_1_without_a_traceback(
    tmp_path, db_path, capsys, monkeypatch
):
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    (project / ".mcp.json").write_text('{"mcpServers": {"teamroom": ')
    anyio.run(_open_and_register, db_path)

    assert main(["doctor", "--dir", str(project), "--db", str(db_path), "--json"]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert err == "" and report["ok"] is False
    [broken] = [f for f in report["findings"] if f["where"] == str(project / ".mcp.json")]
    assert broken["level"] == "problem" and "cannot be read" in broken["text"]
    assert any("no client config here starts teamroom" in f["text"] for f in report["findings"])


def test_doctor_names_a_command_not_on_path_a_client_on_another_store_and_a_server_claude_was_told_to_skip(
    tmp_path, db_path
):
    project, home = tmp_path / "project", tmp_path / "home"
    (project / ".codex").mkdir(parents=True)
    home.mkdir()
    (project / ".codex" / "config.toml").write_text(
        '[mcp_servers.teamroom]\ncommand = "teamroom-nope"\nargs = ["serve"]\n'
    )
    elsewhere = tmp_path / "elsewhere.db"
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "mcpServers": {"teamroom": {"command": TEAMROOM, "args": ["serve", "--db", str(elsewhere)]}},
                "projects": {str(project): {"disabledMcpjsonServers": ["teamroom"]}},
            }
        )
    )

    report = diagnose(_settings(db_path), project, home=home, env={"PATH": "/nonexistent"})

    problems = _levels(report)["problem"]
    assert any("'teamroom-nope' is not on PATH" in p for p in problems)
    assert any(f"its agents use the store {elsewhere}, not {db_path}" in p for p in problems)
    assert any("disabledMcpjsonServers lists teamroom" in p for p in problems)


def test_doctor_reads_a_store_without_creating_or_changing_it_and_names_one_from_a_newer_teamroom(tmp_path, db_path):
    report = diagnose(_settings(db_path), tmp_path, home=tmp_path, env={})
    assert not db_path.exists() and any("no store there yet" in n for n in _levels(report)["note"])
    anyio.run(_open_and_register, db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = db_path.read_bytes()
    report = diagnose(_settings(db_path), tmp_path, home=tmp_path, env={})
    assert any("schema 99 is newer than this teamroom" in p for p in _levels(report)["problem"])
    assert db_path.read_bytes() == before


# --- the operator's commands at the CLI -----------------------------------------------------------


def _act(db: Path, fn, clock: ManualClock | None = None):
    async def go():
        async with SQLiteStore(db, clock=clock) as store:
            return await fn(store)

    return anyio.run(go)


async def _team_with_work(store: SQLiteStore) -> None:
    await register(store, "lead", "lead")
    await register(store, "b1", "builder")
    await register(store, "b2", "builder")
    await claim(store, "b1", ["src/a.py"])
    await send(store, "lead", "b2", "doomed", max_attempts=1)
    [doomed] = (await lease(store, "b2")).messages
    await store.nack("b2", doomed.receipt, "no", 0)


def test_each_operator_verb_at_the_cli_changes_what_it_says_and_the_log_names_the_human(db_path, capsys):
    _act(db_path, _team_with_work)
    db = ["--db", str(db_path)]

    released = run_json(capsys, "locks", "release", "src/a.py", "--force", *db)
    [letter] = run_json(capsys, "dead", "b2", *db)["dead"]
    redriven = run_json(capsys, "redrive", "--all", *db)
    forgotten = run_json(capsys, "agents", "forget", "b1", "--force", *db)

    assert [(r["resource"], r["holder"]) for r in released["released"]] == [("src/a.py", "b1")]
    assert [(r["message_id"], r["to"]) for r in redriven["redriven"]] == [(letter["message_id"], "b2")]
    assert forgotten == {"agent": "b1", "dead": 0, "released": []}
    logged = _act(db_path, events)
    by_kind = {e.kind: e for e in logged if (e.data or {}).get("by") == "human"}
    assert set(by_kind) == {"lock_release", "redrive", "agent_forgotten"}
    assert (by_kind["lock_release"].agent, by_kind["lock_release"].data["forced"]) == ("b1", True)
    assert run_json(capsys, "dead", *db)["dead"] == []


def test_a_release_without_force_is_refused_and_changes_nothing(db_path, capsys):
    _act(db_path, _team_with_work)
    before = snapshot(db_path, skip=())
    assert main(["locks", "release", "src/a.py", "--db", str(db_path)]) == 2
    assert "invalid: releasing a lock for its holder takes --force" in capsys.readouterr().err
    assert main(["agents", "forget", "b1", "--db", str(db_path)]) == 2
    assert "conflict: b1 was seen" in capsys.readouterr().err
    assert snapshot(db_path, skip=()) == before


@pytest.mark.parametrize("limit", ["0", "-1", "10001"])
def test_dead_refuses_a_limit_out_of_bounds_with_a_clear_error(db_path, capsys, limit):
    _act(db_path, _team_with_work)
    before = snapshot(db_path, skip=())
    assert main(["dead", "--limit", limit, "--db", str(db_path)]) == 2  # -1 would be SQLite's "no limit"
    err = capsys.readouterr().err
    assert f"invalid: --limit must be from 1 to 10000, got {limit}" in err and "Traceback" not in err
    assert snapshot(db_path, skip=()) == before


def test_gc_at_the_cli_dry_run_first_then_for_real_with_the_archive_beside_the_store(db_path, capsys):
    clock = ManualClock(int(time.time() * 1000) - 20 * DAY * 1000)  # a team that worked three weeks ago

    async def work(store):
        await _busy_day(store, clock, n=5)

    _act(db_path, work, clock)
    before = snapshot(db_path, skip=())
    dry = run_json(capsys, "gc", "--dry-run", "--db", str(db_path))
    assert snapshot(db_path, skip=()) == before and not db_path.with_name("teamroom.db.archive").exists()
    done = run_json(capsys, "gc", "--db", str(db_path))
    assert (dry["dry_run"], done["dry_run"]) == (True, False)
    assert (dry["deliveries"], dry["messages"]) == (done["deliveries"], done["messages"]) == (6, 6)
    assert dry["events"] == done["events"] == len(_archived(db_path)) > 0
    stats = run_json(capsys, "stats", "--db", str(db_path))
    assert stats["events"]["archived_through"] == _archived(db_path)[-1]["id"]
    assert stats["store"]["archive_bytes"] > 0 and stats["messages"] == 1, "the delivery_failed waiting for lead"
    written = run_json(capsys, "backup", str(db_path.with_name("copy.db")), "--db", str(db_path))
    assert integrity(Path(written["backup"])) == ["ok"]


# --- the server's own gc --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_server_runs_gc_by_itself_while_it_serves(db_path, clock):
    server = build_server(Settings(db_path=db_path, gc_minutes=0.001), clock=clock)  # every 60 ms
    async with Client(server) as client, SQLiteStore(db_path, clock=clock) as watcher:
        call = Caller(client)
        await call("register", agent="b1")
        await call("send", agent="b1", to="b1", body="note to self")
        [message] = (await call("poll", agent="b1"))["messages"]
        await call("ack", agent="b1", receipts=[message["receipt"]])
        clock.advance(15 * DAY)
        with anyio.fail_after(20):  # a run under way when the clock moved may see only part of it as old
            while sum(e.data["messages"] for e in await events(watcher, "gc")) < 1:
                token = watcher.change_token()
                await watcher.wait_for_change(token, 1.0)
        assert (await call("agents", agent="b1"))["agents"][0]["name"] == "b1", "and it still serves"
        runs = await events(watcher, "gc")
    assert {e.data["by"] for e in runs} == {"teamroom"} and sum(e.data["messages"] for e in runs) == 1


def test_the_retention_and_the_gc_interval_come_from_the_environment_and_bad_values_are_refused(db_path):
    settings = Settings.resolve(db_path, environ={"TEAMROOM_RETENTION_DAYS": "0.5", "TEAMROOM_GC_MINUTES": "0"})
    assert (settings.retention_days, settings.gc_minutes) == (0.5, 0)
    default = Settings.resolve(db_path, environ={})
    assert (default.retention_days, default.gc_minutes) == (14, 60)
    for name, value in [
        ("TEAMROOM_RETENTION_DAYS", "0"),
        ("TEAMROOM_RETENTION_DAYS", "two"),
        ("TEAMROOM_GC_MINUTES", "-1"),
    ]:
        with pytest.raises(Invalid, match=name):
            Settings.resolve(db_path, environ={name: value})

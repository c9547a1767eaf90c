"""``teamroom worker``: a real worker process running a real command on messages from a real store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from teamroom.store import SQLiteStore
from teamroom.tools import agents as agent_tools
from teamroom.tools import messages as message_tools

pytestmark = pytest.mark.processes


def _worker(db: Path, agent: str, *command: str, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "teamroom", "worker", agent, "--db", str(db), "--backoff", "0.1", *extra, "--", *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "TEAMROOM_AGENT": ""},
    )  # fmt: skip


async def _until(check, seconds: float = 60):
    """Poll the store until ``check`` gives something true (a deadline, not a sleep that assumes a speed)."""
    with anyio.fail_after(seconds):
        while not (found := await check()):
            await anyio.sleep(0.05)
        return found


def _stop(worker: subprocess.Popen) -> str:
    worker.send_signal(signal.SIGTERM)
    try:
        _, err = worker.communicate(timeout=60)
    finally:
        worker.kill()
    return err.decode(errors="replace")


@pytest.mark.anyio
async def test_a_command_that_succeeds_acks_its_message_and_replies_with_its_output(tmp_path: Path) -> None:
    db = tmp_path / "teamroom.db"
    store = SQLiteStore(db)
    await store.open()
    try:
        await agent_tools.register(store, "lead", role="lead")
        worker = _worker(db, "bot", "sh", "-c", 'printf "got %s" "$TEAMROOM_MESSAGE_ID"; cat >/dev/null')
        try:
            await _until(lambda: _known(store, "bot"))
            sent = await message_tools.send(store, "lead", "bot", "review src/a.py")
            thread = await _until(lambda: _replied(store, sent.thread_id))
        finally:
            err = _stop(worker)
        first, reply = thread.messages
        assert first.deliveries[0].state == "acked", err
        assert reply.from_ == "bot" and reply.kind == "result" and reply.body == f"got {sent.message_id}"
        assert worker.returncode == 0, err
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_command_that_fails_nacks_until_the_message_is_dead_and_the_sender_is_told(tmp_path: Path) -> None:
    db = tmp_path / "teamroom.db"
    store = SQLiteStore(db)
    await store.open()
    try:
        await agent_tools.register(store, "lead", role="lead")
        worker = _worker(db, "bot", "sh", "-c", "echo broken >&2; exit 3")
        try:
            await _until(lambda: _known(store, "bot"))
            sent = await message_tools.send(store, "lead", "bot", "do it", max_attempts=2)
            notice = await _until(lambda: _delivery_failed(store))
        finally:
            err = _stop(worker)
        assert notice.payload["message_id"] == sent.message_id and notice.payload["state"] == "dead", err
        assert "broken" in notice.body
    finally:
        await store.close()


async def _known(store: SQLiteStore, name: str) -> bool:
    return any(a.name == name for a in (await agent_tools.agents(store, None, include_offline=True)).agents)


async def _replied(store: SQLiteStore, thread_id: str):
    thread = await message_tools.thread(store, None, thread_id)
    return thread if len(thread.messages) >= 2 else None


async def _delivery_failed(store: SQLiteStore):
    inbox = await message_tools.inbox(store, "lead")
    return next((m for m in inbox.messages if m.kind == "delivery_failed"), None)

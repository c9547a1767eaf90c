"""``teamroom worker``: real worker processes running real commands on messages from a real store.

Every wait is a deadline on something observable (the store's state, a file a command writes, a
line in the worker's log), never a sleep that assumes a speed. Leases and timeouts are short so
that the file stays fast.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from teamroom import cli
from teamroom.schemas import Event
from teamroom.schemas.common import Limits
from teamroom.store import Store, open_store
from teamroom.tools import agents as agent_tools
from teamroom.tools import messages as message_tools
from teamroom.worker import clip_output

pytestmark = pytest.mark.processes

T = TypeVar("T")
DEADLINE_S = 20.0


@dataclass
class Worker:
    """One ``teamroom worker`` process; its stderr (one line per job) goes to a file."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then wait for it to exit; its return code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE_S)


@dataclass
class Room:
    """A store in a temp dir, the workers started on it, and the gate their commands wait at."""

    dir: Path
    store: Store
    workers: list[Worker] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.dir / "teamroom.db"

    def worker(self, agent: str, *command: str, flags: tuple[str, ...] = ()) -> Worker:
        log = self.dir / f"worker-{len(self.workers)}.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "teamroom", "worker", agent, "--db", str(self.db), "--backoff", "0.1",
                 *flags, "--", *command],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, "TEAMROOM_AGENT": ""},
            )  # fmt: skip
        self.workers.append(Worker(process, log))
        return self.workers[-1]

    def gated(self, then: str = 'printf "finished %s" "$TEAMROOM_MESSAGE_ID"') -> tuple[str, ...]:
        """A command that says it started (``started-ID`` holds its pid), waits for `open_gate`, then runs ``then``."""
        room = shlex.quote(str(self.dir))
        script = (
            f'echo $$ > {room}/started-"$TEAMROOM_MESSAGE_ID"; cat >/dev/null;'
            f" while [ ! -e {room}/go ]; do sleep 0.02; done; {then}"
        )
        return ("sh", "-c", script)

    def open_gate(self) -> None:
        (self.dir / "go").touch()

    async def started(self, message_id: str) -> int:
        """Wait until the gated command of ``message_id`` runs; its pid."""
        path = self.dir / f"started-{message_id}"
        with anyio.fail_after(DEADLINE_S):
            while not (path.exists() and path.read_text().strip()):
                await anyio.sleep(0.02)
        return int(path.read_text())

    async def until(self, check: Callable[[], Awaitable[T | None]], seconds: float = DEADLINE_S) -> T:
        """Wait until ``check`` gives something true, waking on every commit to the store."""
        with anyio.fail_after(seconds):
            while True:
                token = self.store.change_token()  # before looking, so a commit in between still wakes us
                if found := await check():
                    return found
                await self.store.wait_for_change(token, 0.5)

    async def logged(self, worker: Worker, text: str) -> None:
        with anyio.fail_after(DEADLINE_S):
            while text not in worker.text():
                await anyio.sleep(0.02)

    async def events(self, kind: str, subject: str | None = None) -> list[Event]:
        found = (await message_tools.events(self.store, limit=1000, kinds=[kind])).events
        return [e for e in found if subject is None or e.subject == subject]

    async def thread(self, thread_id: str, messages: int = 1) -> Any:
        """The thread once it holds ``messages`` messages and its first is finished (acked, dead or expired)."""

        async def done() -> Any:
            found = await message_tools.thread(self.store, None, thread_id)
            finished = all(d.state not in ("queued", "leased") for d in found.messages[0].deliveries)
            return found if len(found.messages) >= messages and finished else None

        return await self.until(done)

    async def notice(self) -> Any:
        """The ``delivery_failed`` message waiting for lead."""

        async def look() -> Any:
            inbox = await message_tools.inbox(self.store, "lead")
            return next((m for m in inbox.messages if m.kind == "delivery_failed"), None)

        return await self.until(look)

    def clean_up(self) -> None:
        """Kill every worker still running and every command still running in its own process group."""
        for worker in self.workers:
            worker.process.kill()
            worker.process.wait()
        for started in self.dir.glob("started-*"):
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.killpg(int(started.read_text()), signal.SIGKILL)


@asynccontextmanager
async def _room(tmp_path: Path) -> AsyncIterator[Room]:
    store = open_store(tmp_path / "teamroom.db")
    await store.open()
    room = Room(tmp_path, store)
    try:
        await agent_tools.register(store, "lead", role="lead")
        await agent_tools.register(store, "bot")  # so lead may send before the worker is up
        yield room
    finally:
        room.clean_up()
        await store.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.anyio
async def test_a_command_that_succeeds_acks_its_message_and_replies_with_its_output(tmp_path: Path) -> None:
    echo = (
        "import json, os, sys; m = json.load(sys.stdin); e = os.environ;"
        " print(e['TEAMROOM_AGENT'], e['TEAMROOM_MESSAGE_ID'], e['TEAMROOM_FROM'], e['TEAMROOM_THREAD_ID'],"
        " m['body'], end='')"
    )
    async with _room(tmp_path) as room:
        worker = room.worker("reviewer", sys.executable, "-c", echo)
        await room.until(lambda: _known(room.store, "reviewer"))
        sent = await message_tools.send(room.store, "lead", "reviewer", "review src/a.py")  # wakes its idle wait
        first, reply = (await room.thread(sent.thread_id, messages=2)).messages
        assert worker.stop() == 0, worker.text()
    assert first.deliveries[0].state == "acked" and first.deliveries[0].attempt == 1
    assert reply.from_ == "reviewer" and reply.kind == "result" and reply.reply_to == sent.message_id
    assert reply.body == f"reviewer {sent.message_id} lead {sent.thread_id} review src/a.py"


@pytest.mark.anyio
async def test_a_command_that_fails_is_redelivered_until_its_message_is_dead_and_the_sender_is_told(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    async with _room(tmp_path) as room:
        sent = await message_tools.send(room.store, "lead", "bot", "do it", max_attempts=2)
        worker = room.worker("bot", "sh", "-c", f'echo "$TEAMROOM_ATTEMPT" >> {runs}; echo broken >&2; exit 3')
        notice = await room.notice()
        thread = await room.thread(sent.thread_id)
        nacks = await room.events("nack", sent.message_id)
        assert worker.stop() == 0, worker.text()
    assert runs.read_text().split() == ["1", "2"]  # given back after the first, redelivered with the next attempt
    assert [e.data["reason"] for e in nacks] == ["exit 3: broken", "exit 3: broken"]
    assert thread.messages[0].deliveries[0].state == "dead"
    assert notice.payload["message_id"] == sent.message_id and notice.payload["state"] == "dead"
    assert "exit 3: broken" in notice.body


@pytest.mark.anyio
async def test_a_command_past_its_timeout_is_killed_and_its_message_nacked_saying_so(tmp_path: Path) -> None:
    async with _room(tmp_path) as room:
        sent = await message_tools.send(room.store, "lead", "bot", "slow", max_attempts=1)
        worker = room.worker("bot", *room.gated("echo never"), flags=("--timeout", "0.5"))
        pid = await room.started(sent.message_id)
        notice = await room.notice()
        assert not _alive(pid)  # killed, and reaped by the worker
        assert worker.stop() == 0, worker.text()
    assert notice.payload["message_id"] == sent.message_id
    assert "timed out after 0.5 s" in notice.payload["reason"]


@pytest.mark.anyio
async def test_sigterm_mid_command_takes_no_more_work_lets_the_command_finish_acks_it_and_exits_0(
    tmp_path: Path,
) -> None:
    async with _room(tmp_path) as room:
        running = await message_tools.send(room.store, "lead", "bot", "first")
        waiting = await message_tools.send(room.store, "lead", "bot", "second")
        worker = room.worker("bot", *room.gated())
        await room.started(running.message_id)
        worker.process.send_signal(signal.SIGTERM)
        await room.logged(worker, "stopping: taking no more work")
        room.open_gate()
        assert worker.process.wait(timeout=DEADLINE_S) == 0, worker.text()
        first, reply = (await message_tools.thread(room.store, None, running.thread_id)).messages
        left = (await message_tools.inbox(room.store, "bot")).messages
        leases = await room.events("lease", waiting.message_id)
    assert first.deliveries[0].state == "acked" and reply.body == f"finished {running.message_id}"
    assert [(m.message_id, m.state, m.attempt) for m in left] == [(waiting.message_id, "queued", 0)]
    assert leases == []


@pytest.mark.anyio
async def test_sigterm_gives_back_a_command_that_outlasts_the_grace_and_says_why(tmp_path: Path) -> None:
    async with _room(tmp_path) as room:
        sent = await message_tools.send(room.store, "lead", "bot", "long")
        worker = room.worker("bot", *room.gated(), flags=("--grace", "0.3"))
        pid = await room.started(sent.message_id)
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=DEADLINE_S) == 0, worker.text()
        (nack,) = await room.events("nack", sent.message_id)
        left = (await message_tools.inbox(room.store, "bot")).messages
    assert not _alive(pid)
    assert nack.data["reason"] == "worker stopping: stopped after the 0.3 s grace"
    assert [(m.message_id, m.state, m.attempt) for m in left] == [(sent.message_id, "queued", 1)]


@pytest.mark.anyio
async def test_a_worker_killed_mid_command_gets_its_message_back_after_the_lease(tmp_path: Path) -> None:
    async with _room(tmp_path) as room:
        sent = await message_tools.send(room.store, "lead", "bot", "fragile")
        worker = room.worker("bot", *room.gated(), flags=("--lease", "1"))
        await room.started(sent.message_id)
        worker.process.kill()
        worker.process.wait()
        # A second taker: waits for the message, which comes back once its lease lapses.
        got = await message_tools.poll(room.store, "bot", lease_seconds=60, wait_seconds=DEADLINE_S)
    assert [(m.message_id, m.attempt) for m in got.messages] == [(sent.message_id, 2)]


@pytest.mark.anyio
async def test_a_command_running_longer_than_its_lease_keeps_it(tmp_path: Path) -> None:
    lease = 1
    async with _room(tmp_path) as room:
        sent = await message_tools.send(room.store, "lead", "bot", "long")
        worker = room.worker("bot", *room.gated(), flags=("--lease", str(lease)))
        await room.started(sent.message_id)
        # A second taker, waiting for two leases' time: it would get the message as soon as its lease lapsed.
        got = await message_tools.poll(room.store, "bot", lease_seconds=60, wait_seconds=2 * lease)
        assert got.messages == []
        room.open_gate()
        first, reply = (await room.thread(sent.thread_id, messages=2)).messages
        renews = await room.events("renew")
        leases = await room.events("lease", sent.message_id)
        assert worker.stop() == 0, worker.text()
    assert len(renews) >= 3
    assert [e.agent for e in leases] == ["bot"]  # leased once, by the worker
    assert first.deliveries[0].state == "acked" and first.deliveries[0].attempt == 1


@pytest.mark.anyio
async def test_concurrency_2_runs_two_commands_at_once(tmp_path: Path) -> None:
    async with _room(tmp_path) as room:
        sent = [await message_tools.send(room.store, "lead", "bot", f"job {n}") for n in (1, 2)]
        worker = room.worker("bot", *room.gated(), flags=("--concurrency", "2"))
        for message in sent:  # both started while the gate is closed: neither waited for the other
            await room.started(message.message_id)
        room.open_gate()
        threads = [await room.thread(m.thread_id, messages=2) for m in sent]
        assert worker.stop() == 0, worker.text()
    for message, thread in zip(sent, threads, strict=True):
        first, reply = thread.messages
        assert first.deliveries[0].state == "acked" and reply.body == f"finished {message.message_id}"


def test_tasks_is_refused_with_what_to_do_instead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "teamroom.db"
    assert cli.main(["worker", "bot", "--tasks", "--db", str(db), "--", "true"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("teamroom: invalid: --tasks: ") and "run the worker without --tasks" in err
    assert not db.exists()  # refused before anything was opened


def test_output_is_cut_to_the_body_limit_even_where_bytes_that_are_not_utf8_grow_when_decoded() -> None:
    limit = Limits.BODY_BYTES
    for data in (b"a" * limit, b"\xff" * limit, b"a" * (limit + 1)):
        text = clip_output(data, len(data))
        assert len(text.encode()) <= limit
        assert (text == data.decode()) if data == b"a" * limit else text.endswith(f"of {len(data)} bytes]")


async def _known(store: Store, name: str) -> bool:
    return any(a.name == name for a in (await agent_tools.agents(store, None, include_offline=True)).agents)

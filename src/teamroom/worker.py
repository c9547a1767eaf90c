"""``teamroom worker AGENT -- CMD``: any command as an agent (SPEC.md §10).

The worker opens the agents' store itself and calls the same tools/ functions as the MCP server,
so it needs no server. Each of its slots takes one message at a time, runs CMD with it as JSON on
stdin, keeps the lease alive while CMD runs, and then acks (replying with CMD's stdout) or gives the
message back with the tail of stderr as the reason. What the store does with a give-back
(redelivery, dead after max_attempts, the sender told) is the store's rule, not the worker's.

``--tasks`` (claim tasks instead) is refused until teamroom has the shared task list (SPEC.md §3,
Tasks): a source with the shape of `MessageSource` over task_claim, heartbeat and task_update.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, Process

from teamroom.config import ENV_AGENT, ENV_DB, ENV_MESSAGE_ID, Settings
from teamroom.errors import Invalid, TeamroomError
from teamroom.schemas.common import MESSAGE_KINDS, Limits
from teamroom.store import Store, open_store
from teamroom.tools import _check
from teamroom.tools import agents as agent_tools
from teamroom.tools import messages as message_tools

log = logging.getLogger(__name__)

ENV_TASK_ID = "TEAMROOM_TASK_ID"
ENV_FROM = "TEAMROOM_FROM"
ENV_THREAD_ID = "TEAMROOM_THREAD_ID"
ENV_RECEIPT = "TEAMROOM_RECEIPT"
ENV_ATTEMPT = "TEAMROOM_ATTEMPT"
JOB_ENV = (ENV_MESSAGE_ID, ENV_TASK_ID, ENV_FROM, ENV_THREAD_ID, ENV_RECEIPT, ENV_ATTEMPT)

IDLE_WAIT_S = 50.0  # the longest wait poll allows; a send from any process wakes the wait sooner
KILL_GRACE_S = 5.0  # between SIGTERM and SIGKILL of a command's process group
PIPE_DRAIN_S = 2.0  # after CMD exits, how long a leftover child may keep its pipes open
STDERR_TAIL_CHARS = 2000
# Two workers that answered each other's results would bounce replies forever.
NO_REPLY_KINDS = frozenset({"result", "delivery_failed"})


@dataclass(frozen=True)
class Options:
    """What ``teamroom worker`` was asked to do (flags, checked by `check`)."""

    agent: str
    command: tuple[str, ...]
    role: str | None = None
    kinds: tuple[str, ...] | None = None
    tasks: bool = False
    concurrency: int = 1
    timeout: float | None = 3600.0
    lease: int = 60
    grace: float = 30.0
    backoff: float = 1.0
    backoff_max: float = 60.0

    def check(self) -> Options:
        """The same options, or `Invalid` saying which flag is wrong; changes nothing anywhere."""
        _check.agent_name(self.agent, "AGENT")
        _check.label("--role", self.role, 64)
        if not self.command:
            raise Invalid("no command: give it after --, e.g. teamroom worker reviewer -- ./review.sh")
        if _resolve(self.command[0]) is None:
            raise Invalid(f"command {self.command[0]!r} not found or not executable; give a path or a name on PATH")
        for kind in self.kinds or ():
            if kind not in MESSAGE_KINDS:
                raise Invalid(f"--kinds: unknown kind {kind!r}; kinds are {', '.join(MESSAGE_KINDS)}")
        if self.tasks:
            raise Invalid(
                "--tasks: this teamroom has no shared task list yet, so there are no tasks to claim;"
                " run the worker without --tasks to take AGENT's messages"
            )
        _bounded("--concurrency", self.concurrency, 1, 64)
        _bounded("--lease", self.lease, *Limits.LEASE_SECONDS)
        if self.timeout is not None:
            _bounded("--timeout", self.timeout, 0.001, 7 * 86_400)
        _bounded("--grace", self.grace, 0, 86_400)
        _bounded("--backoff", self.backoff, 0, 3600)
        return self


def _bounded(flag: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise Invalid(f"{flag} must be between {low:g} and {high:g}, got {value:g}")


def _resolve(program: str) -> str | None:
    if os.sep in program:
        return program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    return shutil.which(program)


# --- work and its sources ---------------------------------------------------------------------


@dataclass
class Job:
    """One piece of work as the command sees it, plus what its source needs to finish it."""

    id: str  # m12, t3
    handle: str  # the receipt or fencing token that finishes it
    attempt: str  # "2/5"
    sender: str
    kind: str | None
    stdin: bytes
    env: dict[str, str]


@dataclass
class Outcome:
    """How a command ended."""

    status: Literal["ok", "failed", "given_back"]
    why: str  # for the log line: "exit 0", "exit 3", "timed out after 5 s", ...
    seconds: float
    stdout: str = ""
    reason: str = ""  # for the give-back: what went wrong, with the tail of stderr


class MessageSource:
    """The agent's messages: poll to take one, heartbeat to renew, ack or nack to finish."""

    noun = "messages"

    def __init__(self, store: Store, options: Options, settings: Settings) -> None:
        self.store, self.options, self.settings = store, options, settings
        self.kinds = list(options.kinds) if options.kinds else None

    async def claim(self) -> Job | None:
        """Lease one message, or None when none is ready."""
        got = await message_tools.poll(
            self.store, self.options.agent, limit=1, lease_seconds=self.options.lease, kinds=self.kinds
        )
        if not got.messages:
            return None
        message = got.messages[0]
        env = {
            ENV_MESSAGE_ID: message.message_id,
            ENV_FROM: message.from_,
            ENV_THREAD_ID: message.thread_id,
            ENV_RECEIPT: message.receipt,
            ENV_ATTEMPT: str(message.attempt),
        }
        stdin = json.dumps(message.model_dump(mode="json", by_alias=True), ensure_ascii=False).encode()
        attempt = f"{message.attempt}/{message.max_attempts}"
        return Job(message.message_id, message.receipt, attempt, message.from_, message.kind, stdin, env)

    async def ready_in(self) -> float | None:
        """Seconds until a message can be taken (0: now); None when none waits."""
        return await self.store.next_ready_in(self.options.agent, self.kinds, None)

    async def renew(self) -> int:
        """Extend every lease the agent holds (the store's heartbeat renews them all)."""
        return (await agent_tools.heartbeat(self.store, self.options.agent)).leases_renewed

    async def finish(self, job: Job, outcome: Outcome) -> str:
        """Ack (replying with stdout) or nack; returns what happened, for the log line."""
        agent = self.options.agent
        if outcome.status == "ok":
            replied = ""
            if outcome.stdout.strip() and job.kind not in NO_REPLY_KINDS:
                # Keyed by the message, so a redelivery after a lost ack does not reply twice.
                sent = await message_tools.send(
                    self.store, agent, None, outcome.stdout, kind="result", reply_to=job.id,
                    idempotency_key=f"teamroom-worker-result:{job.id}",
                )  # fmt: skip
                replied = f", replied {sent.message_id}"
            await message_tools.ack(self.store, agent, [job.handle])
            return f"acked{replied}"
        nacked = await message_tools.nack(self.store, agent, job.handle, outcome.reason)
        return f"nacked ({nacked.state})"


Source = MessageSource  # and a TaskSource, once tasks exist (see the module's docstring)


# --- running one command ------------------------------------------------------------------------


class Backoff:
    """Exponential pause after failures in a row, capped; a success resets it."""

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap, self.failures, self.until = base, cap, 0, 0.0

    def delay(self) -> float:
        return 0.0 if self.failures == 0 else min(self.cap, self.base * 2 ** (self.failures - 1))

    def record(self, ok: bool, now: float) -> float:
        """Count one outcome; returns the pause it starts (0 after a success)."""
        self.failures = 0 if ok else self.failures + 1
        self.until = now + self.delay()
        return self.delay()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").replace("\x00", "\ufffd")


def clip_output(data: bytes, total: int, limit: int = Limits.BODY_BYTES) -> str:
    """CMD's stdout as message text within the body limit, saying so when it was cut.

    Measured after decoding: each invalid byte becomes U+FFFD, three bytes of UTF-8, so binary
    output under the limit can decode to a body over it (which send would refuse).
    """
    text = _text(data)
    encoded = text.encode()
    if total <= limit and len(encoded) <= limit:
        return text
    note = f"\n[teamroom worker: output cut at {limit - 200} of {total} bytes]"
    return encoded[: limit - 200].decode("utf-8", "ignore") + note


class _Capture:
    """Keeps the head (stdout, up to a limit) or the tail (stderr) of a stream, counting all of it."""

    def __init__(self, keep: int, tail: bool) -> None:
        self.keep, self.tail, self.data, self.total = keep, tail, b"", 0

    async def read(self, stream: ByteReceiveStream) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            while True:
                chunk = await stream.receive()
                self.total += len(chunk)
                if self.tail:
                    self.data = (self.data + chunk)[-self.keep :]
                elif len(self.data) < self.keep:
                    self.data += chunk[: self.keep - len(self.data)]


async def _feed(stream: ByteSendStream, data: bytes) -> None:
    """Write the job to CMD's stdin and close it; a CMD that reads nothing is fine."""
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stream.send(data)
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stream.aclose()


async def _kill_group(process: Process) -> None:
    """SIGTERM the command's whole process group, then SIGKILL what is left after a grace."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        if grace is None:
            break
        with anyio.move_on_after(grace):
            await process.wait()
            break
    with anyio.CancelScope(shield=True):
        await process.wait()


def _failure(process: Process, stderr: str) -> tuple[str, str]:
    code = process.returncode
    why = f"exit {code}" if code is not None and code >= 0 else f"killed by {signal.Signals(-code).name}"
    tail = stderr.strip()[-STDERR_TAIL_CHARS:]
    return why, f"{why}: {tail}" if tail else why


# --- the worker ---------------------------------------------------------------------------------


@dataclass
class Worker:
    """Slots taking work from one source, a renewer keeping their leases, and the signal handling."""

    store: Store
    source: Source
    options: Options
    settings: Settings
    backoff: Backoff = field(init=False)
    stopping: bool = False
    stop_at: float = 0.0
    running: dict[str, anyio.CancelScope] = field(default_factory=dict)  # job id -> the scope of its wait
    waits: set[anyio.CancelScope] = field(default_factory=set)  # idle waits and pauses: cancelled on stop

    def __post_init__(self) -> None:
        self.backoff = Backoff(self.options.backoff, self.options.backoff_max)

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._signals)
            tg.start_soon(self._renewer)
            async with anyio.create_task_group() as slots:
                for _ in range(self.options.concurrency):
                    slots.start_soon(self._slot)
            tg.cancel_scope.cancel()  # every slot has ended: nothing left to renew or to stop

    def stop(self) -> None:
        """Take no more work; what runs may finish until the grace ends, then it is given back."""
        if self.stopping:  # a second signal: give back now
            for scope in self.running.values():
                scope.deadline = min(scope.deadline, anyio.current_time())
            return
        self.stopping, self.stop_at = True, anyio.current_time()
        for scope in self.waits:
            scope.cancel()
        for scope in self.running.values():
            scope.deadline = min(scope.deadline, self.stop_at + self.options.grace)
        log.info(
            "stopping: taking no more work; %d running may finish within %g s", len(self.running), self.options.grace
        )

    async def _signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            async for _ in received:
                self.stop()

    async def _renewer(self) -> None:
        """Renew the leases of running jobs well before they lapse: every third of the lease."""
        while True:
            await anyio.sleep(max(self.options.lease / 3, 0.2))
            if self.running:
                try:
                    await self.source.renew()
                except TeamroomError as exc:  # a bad moment for the store: the next tick tries again
                    log.warning("could not renew leases: %s", exc)

    async def _slot(self) -> None:
        while not self.stopping:
            pause = self.backoff.until - anyio.current_time()
            if pause > 0:
                await self._unless_stopping(anyio.sleep, pause)
                continue
            job = await self._take()
            if job is not None:
                await self._do(job)

    async def _unless_stopping(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Await ``fn`` unless a stop comes first (it cancels the wait, which holds nothing)."""
        if self.stopping:
            return
        with anyio.CancelScope() as scope:
            self.waits.add(scope)
            try:
                await fn(*args)
            finally:
                self.waits.discard(scope)

    async def _take(self) -> Job | None:
        """One job, or None after an idle wait (what poll's wait_seconds does, but a stop ends it)."""
        with anyio.CancelScope(shield=True):  # a lease taken must reach us: never cancel it midway
            job = await self.source.claim()
        if job is not None:
            return job
        # After the claim (its own write moves the token) and before looking, as poll does.
        token = self.store.change_token()
        ready_in = await self.source.ready_in()
        if ready_in != 0:
            wait = IDLE_WAIT_S if ready_in is None else min(IDLE_WAIT_S, ready_in)
            await self._unless_stopping(self.store.wait_for_change, token, wait)
        return None

    async def _do(self, job: Job) -> None:
        outcome = await self._execute(job)
        with anyio.CancelScope(shield=True):
            try:
                done = await self.source.finish(job, outcome)
            except TeamroomError as exc:  # e.g. lease_expired: the store redelivers it; say so
                done = f"could not finish: {exc}"
                log.warning("%s: %s", job.id, done)
        detail = f": {outcome.reason.splitlines()[-1][:200]}" if outcome.status != "ok" and outcome.reason else ""
        log.info(
            "%s from %s (attempt %s): %s in %.2f s; %s%s",
            job.id, job.sender, job.attempt, outcome.why, outcome.seconds, done, detail,
        )  # fmt: skip
        if outcome.status != "given_back":
            pause = self.backoff.record(outcome.status == "ok", anyio.current_time())
            if pause:
                log.info("backing off %g s after %d failures in a row", pause, self.backoff.failures)

    def _environment(self, job: Job) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in JOB_ENV}
        env.update({ENV_AGENT: self.options.agent, ENV_DB: str(self.settings.db_path), **job.env})
        return env

    async def _execute(self, job: Job) -> Outcome:
        """Run CMD on one job within its deadline; kill its process group past it."""
        started = time.monotonic()
        timeout = self.options.timeout
        try:
            process = await anyio.open_process(
                list(self.options.command), env=self._environment(job), start_new_session=True
            )
        except OSError as exc:
            reason = f"cannot run {self.options.command[0]}: {exc.strerror or exc}"
            return Outcome("failed", "could not start", time.monotonic() - started, reason=reason)
        out, err = _Capture(Limits.BODY_BYTES + 1, tail=False), _Capture(4 * STDERR_TAIL_CHARS, tail=True)
        timeout_at = anyio.current_time() + timeout if timeout is not None else float("inf")
        deadline = min(timeout_at, self.stop_at + self.options.grace) if self.stopping else timeout_at
        async with anyio.create_task_group() as pipes:
            assert process.stdin and process.stdout and process.stderr
            pipes.start_soon(_feed, process.stdin, job.stdin)
            pipes.start_soon(out.read, process.stdout)
            pipes.start_soon(err.read, process.stderr)
            with anyio.CancelScope(deadline=deadline) as scope:
                self.running[job.id] = scope
                try:
                    await process.wait()
                finally:
                    del self.running[job.id]
            if scope.cancelled_caught:
                await _kill_group(process)
            pipes.cancel_scope.deadline = anyio.current_time() + PIPE_DRAIN_S
        seconds = time.monotonic() - started
        stderr = _text(err.data)
        if scope.cancelled_caught:
            # Which deadline ended it: a stop lowers the scope's deadline below the timeout's.
            if scope.deadline < timeout_at:
                why = f"stopped after the {self.options.grace:g} s grace"
                return Outcome("given_back", why, seconds, reason=f"worker stopping: {why}")
            why = f"timed out after {timeout:g} s"
            tail = stderr.strip()[-STDERR_TAIL_CHARS:]
            return Outcome("failed", why, seconds, reason=f"{why}: {tail}" if tail else why)
        if process.returncode == 0:
            return Outcome("ok", "exit 0", seconds, stdout=clip_output(out.data, out.total))
        why, reason = _failure(process, stderr)
        return Outcome("failed", why, seconds, reason=reason)


# --- entry point ----------------------------------------------------------------------------------


async def serve(options: Options, settings: Settings) -> int:
    """Register the agent and work until stopped; 0 after a clean stop."""
    options = options.check()
    async with open_store(settings.db_path, durability=settings.durability) as store:
        await agent_tools.register(store, options.agent, role=options.role)
        worker = Worker(store, MessageSource(store, options, settings), options, settings)
        log.info(
            "worker %s taking %s%s, %d at a time: %s",
            options.agent, MessageSource.noun, f" ({','.join(options.kinds)})" if options.kinds else "",
            options.concurrency, shlex.join(options.command),
        )  # fmt: skip
        try:
            await worker.run()
        except BaseExceptionGroup as group:
            raise _first_domain_error(group) or group from None
    log.info("worker %s stopped", options.agent)
    return 0


def _first_domain_error(group: BaseExceptionGroup) -> TeamroomError | None:
    """The domain error inside a task group's exception group, so the CLI can print it in one line."""
    for exc in group.exceptions:
        if isinstance(exc, TeamroomError):
            return exc
        if isinstance(exc, BaseExceptionGroup) and (inner := _first_domain_error(exc)) is not None:
            return inner
    return None


def main(options: Options, settings: Settings) -> int:
    return anyio.run(serve, options, settings)

"""The store contract and the rules every backend shares.

`Store` is what the tools, the CLI, the hooks' servers and the dashboard call: async domain verbs
that return schemas and raise `teamroom.errors` for refusals. The verbs are written once, here: each
one is a rule of `teamroom.store.rules` run inside one transaction. A backend (`store/sqlite/`,
later `store/postgres/`) supplies only what differs between databases: how a transaction is opened
and run, its dialect of the named queries (``queries.sql``), and how a waiter learns that another
process committed. saq's ``Queue`` keeps its state changes the same way.

The contract a backend must keep
--------------------------------
- **Atomic, serialised writes.** `_run(write=True, fn, args)` runs ``fn(tx, *args)`` in one
  transaction that holds the store's write lock from its first statement (SQLite: ``BEGIN
  IMMEDIATE``; PostgreSQL: a transaction-level advisory lock taken first). Claim, lease, post and
  resume read and then write; two of them must never interleave, or a lock is granted twice and a
  delivery handed to two workers. ``fn`` either returns (commit) or raises (rollback, nothing
  changed); a refusal is an exception, so a refusal changes nothing. A write that the caller
  abandons before it commits is rolled back; one that committed first is given back at once
  (`_give_back`), so a caller that never saw its answer holds nothing.
- **Reads** (`write=False`) see one consistent snapshot and take no write lock.
- **One hop per transaction, never on the event loop.** ``fn`` is synchronous and runs wholly on
  the backend's worker thread; the loop only awaits its result, so one large read does not stall
  the other calls of the process.
- **Whose clock.** Every expiry (leases, TTLs, lock lifetimes, liveness) is decided by one clock per
  store, read once per transaction after the write lock is taken (``tx.now``), never by a caller's:
  SQLite's is the machine's (`SystemClock`, the one machine its processes share), PostgreSQL's the
  database's (``clock_timestamp()``, one clock for servers on many machines). A `Clock` given to
  the store replaces either: tests move a `ManualClock` instead of sleeping.
- **Byte order.** Resources are compared and ranged in the byte order of their UTF-8 text (SQLite's
  default BINARY collation; PostgreSQL columns use ``COLLATE "C"``): a glob's literal prefix is the
  half-open range ``[prefix, prefix + U+10FFFF)`` in that order.
- **Waits.** `change_token()` is cheap and synchronous; `wait_for_change(token, timeout)` returns
  True soon after any process commits after the token was taken. One watcher per process serves
  all its waiters. The database stays the source of truth: a lost notification may delay a wake-up,
  never lose a change, and a waiter rechecks the data after every wake.
- **Housekeeping** (dead letters, expiries, expired locks) rides along with writes about once a
  second (`_apply`), inside the writing transaction.
"""

from __future__ import annotations

import abc
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from teamroom.errors import Conflict, Invalid, TeamroomError
from teamroom.schemas import (
    AckResult,
    AgentRecord,
    AgentsResult,
    EventsResult,
    HandoffResult,
    HeartbeatResult,
    InboxResult,
    NackResult,
    PollResult,
    PostResult,
    ReadBoardResult,
    ResumeResult,
    SendResult,
    ThreadResult,
)
from teamroom.schemas.common import SYSTEM_AGENT
from teamroom.schemas.locks import ClaimResult, LocksResult, ReleaseResult
from teamroom.schemas.ops import (
    DeadResult,
    ForceReleaseResult,
    ForgetResult,
    GcResult,
    RedriveResult,
    StatsResult,
    StoreSize,
)
from teamroom.store import archive
from teamroom.store.rules import (
    agents,
    board,
    cli,
    digest,
    events,
    giveback,
    handoffs,
    housekeeping,
    locks,
    messages,
    ops,
    sessions,
    web,
)
from teamroom.store.tx import Tx, iso

T = TypeVar("T")
log = logging.getLogger(__name__)

SWEEP_EVERY_MS = 1_000
# Retention pages: each is one short transaction (~0.5-1 ms here); after each, gc pauses at least
# GC_PAUSE_S and at least GC_PAUSE_RATIO times as long as the page took, so that the agents' calls
# (which share the server's event loop and the store's write lock with it) wait little and rarely.
GC_MESSAGES_PAGE = 100
GC_EVENTS_PAGE = 250
GC_PAUSE_S = 0.002
GC_PAUSE_RATIO = 20.0  # a server's own gc: its calls go first (bench/bench_gc.py)
GC_CLI_PAUSE_RATIO = 3.0  # teamroom gc, in a process of its own: the servers' calls wait at most a page
GC_FLUSH_EVERY = 8  # write pages between two `_gc_flush` calls
GC_SYNC_EVERY = 8  # pages of events written to the archive between two syncs (each then deleted)
GC_FIRST_WITHIN_S = 600  # a server's first gc: at a random moment between 5 and 10 minutes after it starts


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to: tests advance it instead of sleeping."""

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)


class Store(abc.ABC):
    """Everything the tools need from storage; a backend fills the abstract methods."""

    clock: Clock
    operations = True  # whether the operator's verbs (gc, stats, dead, redrive, ...) run on this backend

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._seen: dict[str, int] = {}  # agent -> last_seen this process wrote (spares a write a call)
        self._swept_at = 0

    # --- what a backend supplies ---------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, migrate (refusing a schema newer than this code knows) and start watching."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def _run(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """Run ``_apply(tx, write, fn, args)`` in one transaction as the contract above says; then `_committed(tx)`."""

    @abc.abstractmethod
    def change_token(self) -> Any:
        """An opaque marker of the store's state now; see `wait_for_change`."""

    @abc.abstractmethod
    async def wait_for_change(self, token: Any, timeout: float) -> bool:
        """Wait until any process commits after ``token`` was taken, or ``timeout`` seconds pass."""

    @abc.abstractmethod
    def _local_commit(self) -> None:
        """Called after each write this process committed (a backend wakes its own waiters here)."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the transaction body every backend runs -----------------------------------------------

    def _apply(self, tx: Tx, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """The body of one transaction: housekeeping about once a second on writes, then ``fn``."""
        if write and tx.now - self._swept_at >= SWEEP_EVERY_MS:
            messages.sweep(tx)
            locks.sweep(tx)
            tx.swept = True
        return fn(tx, *args)

    def _committed(self, tx: Tx) -> None:
        """After ``tx`` committed: remember what it wrote so the next transaction need not repeat it."""
        if tx.swept:
            self._swept_at = tx.now
        for agent in tx.touched:  # only once committed: a rolled-back touch must be written again
            self._seen[agent] = tx.now

    async def _give_back(self, fn: Callable[..., Any], result: Any) -> None:
        """A committed write of rule ``fn`` answered ``result`` to a caller that is gone: give back what it
        took (`rules.giveback`). Backends call this, shielded from cancellation, once they see it."""
        back = giveback.for_call(fn, result)
        if back is not None:
            await self._run(True, back[0], back[1])
            self._local_commit()

    async def keep_house(self, every: float = SWEEP_EVERY_MS / 1000) -> None:
        """Run until cancelled: every ``every`` seconds, the sweep if anything is due (`rules.housekeeping`),
        so expiries happen on time with nobody writing. A server runs one per process."""
        while True:
            await anyio.sleep(every)
            try:
                if await self._read(housekeeping.due):
                    await self._write(housekeeping.sweep)
            except TeamroomError as exc:  # an unusable store says so on the next call; keep looking
                log.warning("housekeeping: %s", exc)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        result = await self._run(True, fn, args)
        self._local_commit()
        return result

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(False, fn, args)

    # --- agents ------------------------------------------------------------------------------

    async def register(
        self,
        agent: str,
        role: str | None,
        capabilities: list[str] | None,
        description: str | None,
        session_id: str | None = None,
    ) -> AgentRecord:
        """Create or update ``agent``; with ``session_id``, bind that client session to it if unbound."""
        return await self._write(_register, agent, role, capabilities, description, session_id)

    async def heartbeat(self, agent: str, status: str | None, task: str | None, note: str | None) -> HeartbeatResult:
        return await self._write(_heartbeat, agent, status, task, note)

    async def agents(
        self, agent: str | None, role: str | None, capability: str | None, include_offline: bool
    ) -> AgentsResult:
        """A caller (``agent``) is marked seen, so this writes; with no caller it only reads."""
        run = self._read if agent is None else self._write
        return await run(agents.list_agents, agent, role, capability, include_offline)

    async def bind_session(self, session_id: str, agent: str, client: str | None, *, replace: bool) -> bool:
        """Bind a client session to ``agent`` (`rules.sessions.bind`); the hooks' form is `DirectStore`."""
        return await self._write(partial(sessions.bind, replace=replace), session_id, agent, client)

    async def digest(self, agent: str, top: int = 3) -> dict[str, Any]:
        """What waits for ``agent``, as the hooks put it in its context (`rules.digest`). Reads only."""
        return await self._read(digest.digest, agent, top)

    # --- messages ----------------------------------------------------------------------------

    async def send(
        self,
        agent: str,
        to: list[str] | None,
        body: str,
        *,
        subject: str | None,
        kind: str,
        payload: dict[str, Any] | None,
        priority: int,
        thread_id: str | None,
        reply_to: str | None,
        ttl_seconds: int | None,
        max_attempts: int,
        idempotency_key: str | None,
    ) -> SendResult:
        opts = dict(
            subject=subject,
            kind=kind,
            payload=payload,
            priority=priority,
            thread_id=thread_id,
            reply_to=reply_to,
            ttl_seconds=ttl_seconds,
            max_attempts=max_attempts,
            idempotency_key=idempotency_key,
        )
        return await self._write(messages.send, agent, to, body, opts)

    async def lease(
        self, agent: str, limit: int, lease_seconds: int, kinds: list[str] | None, thread_id: str | None
    ) -> PollResult:
        """Lease up to ``limit`` ready deliveries of ``agent``, highest priority first, then oldest."""
        return await self._write(messages.lease, agent, limit, lease_seconds, kinds, thread_id)

    async def next_ready_in(self, agent: str, kinds: list[str] | None, thread_id: str | None) -> float | None:
        """Seconds until a delivery of ``agent`` can be leased (0: now), None if none is waiting. Reads only."""
        at = await self._read(messages.next_ready_at, agent, kinds, thread_id)
        return None if at is None else max(0.0, (at - self.clock.now_ms()) / 1000)

    async def ack(self, agent: str, receipts: list[str]) -> AckResult:
        return await self._write(messages.ack, agent, receipts)

    async def nack(self, agent: str, receipt: str, reason: str | None, retry_after_seconds: float) -> NackResult:
        return await self._write(messages.nack, agent, receipt, reason, retry_after_seconds)

    async def thread(self, agent: str | None, thread_id: str, limit: int) -> ThreadResult:
        run = self._read if agent is None else self._write
        return await run(messages.thread, agent, thread_id, limit)

    async def inbox(self, agent: str, limit: int) -> InboxResult:
        """The deliveries waiting for ``agent``, without leasing them (for humans and resources)."""
        return await self._read(messages.inbox, agent, limit)

    # --- board -------------------------------------------------------------------------------

    async def post_finding(
        self,
        agent: str,
        body: str,
        *,
        title: str | None,
        scope: str | None,
        kind: str | None,
        tags: list[str],
        refs: list[str],
        supersedes: str | None,
    ) -> PostResult:
        """Append an entry; ``scope`` and ``kind`` default to the superseded entry's, else ``main`` and ``finding``."""
        return await self._write(board.post, agent, body, title, scope, kind, tags, refs, supersedes)

    async def read_board(
        self,
        agent: str | None,
        scope: str,
        *,
        since: int | None,
        kinds: list[str] | None,
        author: str | None,
        tags: list[str] | None,
        limit: int,
        include_superseded: bool,
    ) -> ReadBoardResult:
        """Without ``since``: ``agent``'s unread entries, marked read. With it, or with no agent: a plain read."""
        run = self._read if agent is None else self._write
        return await run(board.read, agent, scope, since, kinds, author, tags, limit, include_superseded)

    # --- handoffs ----------------------------------------------------------------------------

    async def handoff(
        self,
        agent: str,
        task: str,
        summary: str,
        next_step: str,
        fields: dict[str, Any],
        to: list[str] | None,
        transfer_locks: bool,
    ) -> HandoffResult:
        """Store a handoff record (``fields``: done, remaining, blockers, files, branch, scope); send it to ``to``.

        With ``transfer_locks``, the caller's locks are held for the handoff until it is taken.
        """
        return await self._write(handoffs.create, agent, task, summary, next_step, fields, to, transfer_locks)

    async def resume(self, agent: str, task: str | None, handoff_id: str | None) -> ResumeResult:
        """Take the handoff named, the newest for ``task``, or the newest addressed to ``agent`` or its own;
        its transferred locks move to ``agent``."""
        return await self._write(handoffs.resume, agent, task, handoff_id)

    # --- locks -------------------------------------------------------------------------------

    async def claim_lock(
        self, agent: str, resources: list[str], mode: str, ttl_seconds: int, reason: str | None
    ) -> ClaimResult:
        """Grant all of ``resources`` (normalised) to ``agent`` or none; renewing what it holds keeps tokens."""
        return await self._write(locks.claim, agent, resources, mode, ttl_seconds, reason)

    async def lock_clear_in(self, agent: str, resources: list[str], mode: str) -> float:
        """Seconds until the first live lock in the way of this claim expires; 0 when none is. Reads only."""
        return await self._read(locks.clear_in, agent, resources, mode) / 1000

    async def release_lock(self, agent: str, resources: list[str] | None) -> ReleaseResult:
        """Release the caller's locks on ``resources`` (all of them when None), all or nothing."""
        return await self._write(locks.release, agent, resources)

    async def locks(
        self, agent: str | None, resource: str | None, holder: str | None, limit: int | None
    ) -> LocksResult:
        """Live locks overlapping ``resource`` (or all) held by ``holder`` (or anyone); ``limit`` None: all."""
        run = self._read if agent is None else self._write
        return await run(locks.list_locks, agent, resource, holder, limit)

    # --- audit log ---------------------------------------------------------------------------

    async def events(
        self, after_id: int, limit: int, agent: str | None = None, kinds: list[str] | None = None
    ) -> EventsResult:
        return await self._read(events.events, after_id, limit, agent, kinds)

    # --- the dashboard's reads (issue 16) ------------------------------------------------------

    async def recent_threads(self, limit: int) -> list[str]:
        """Ids of the threads with the newest messages, newest first. Reads only."""
        return await self._read(web.recent_threads, limit)

    async def board_scopes(self) -> list[str]:
        """Names of every board scope, in the order opened. Reads only."""
        return await self._read(web.board_scopes)

    # --- the CLI and the agent economy (issue 12) ----------------------------------------------

    async def ack_then_lease(
        self,
        agent: str,
        receipts: list[str],
        limit: int,
        lease_seconds: int,
        kinds: list[str] | None,
        thread_id: str | None,
        *,
        by: str | None = None,
    ) -> tuple[int, PollResult]:
        """Ack ``receipts`` as `ack` does (all or nothing), then lease up to ``limit`` (0: none) as `lease`
        does, in one transaction. Returns the acked count and the leased messages; a refused receipt
        leases nothing. With ``by`` (a human at the CLI), acts for the existing ``agent`` without marking
        it seen, and its audit events name ``by``."""
        return await self._write(cli.ack_then_lease, agent, receipts, limit, lease_seconds, kinds, thread_id, by)

    async def send_on_behalf(self, by: str, agent: str, to: list[str] | None, body: str, **opts: Any) -> SendResult:
        """`send` as the existing ``agent`` for ``by`` (a human at the CLI): not seen, its events name ``by``."""
        return await self._write(cli.send_on_behalf, by, agent, to, body, opts)

    async def known_names(self) -> dict[str, list[str]]:
        """``{"agents": [...], "scopes": [...]}``: every name a caller may refer to. Reads only."""
        return await self._read(cli.known_names)

    # --- operations (SPEC.md §9) ---------------------------------------------------------------

    async def gc(
        self, retention_days: float, *, by: str, dry_run: bool = False, pause_ratio: float = GC_PAUSE_RATIO
    ) -> GcResult:
        """Delete what finished more than ``retention_days`` ago: finished deliveries (acked, dead, expired),
        then the messages left with none; audit events are appended to the archive first, then deleted.

        Board entries, handoffs (and the message each names) stay. Page by page, each page its own
        transaction with a pause after it ``pause_ratio`` times as long, so the agents' calls wait at
        most one page, and rarely. ``dry_run`` counts and changes nothing. ``by`` is who ran it
        (recorded in a ``gc`` event when anything went).
        """
        self._operations('gc')
        started, retention_ms = time.monotonic(), ops.days_ms(retention_days)
        run = self._read if dry_run else self._write
        deliveries = gone = after = 0
        more = True
        pages = 0
        while more:
            async with self._page(pause_ratio):
                page = await run(ops.trim_messages, retention_ms, after, GC_MESSAGES_PAGE, dry_run)
            deliveries, gone = deliveries + page.deliveries, gone + page.messages
            after, more, pages = page.last_id, page.more, pages + 1
            if not dry_run and (pages % GC_FLUSH_EVERY == 0 or not more):
                await self._gc_flush()
        directory = self.archive_dir()
        trimmed = 0 if directory is None else await self._archive_events(directory, retention_ms, dry_run, pause_ratio)
        summary = {"deliveries": deliveries, "messages": gone, "events": trimmed}
        if not dry_run and any(summary.values()):
            await self._write(ops.record_gc, by, {**summary, "retention_days": retention_days})
        return GcResult(
            dry_run=dry_run, retention_days=retention_days, cutoff=iso(self.clock.now_ms() - retention_ms),
            **summary, archive=None if directory is None else str(directory), seconds=time.monotonic() - started,
        )  # fmt: skip

    @asynccontextmanager
    async def _page(self, ratio: float) -> AsyncIterator[None]:
        """One page of gc, then a pause ``ratio`` times as long (at least GC_PAUSE_S)."""
        began = time.monotonic()
        yield
        await anyio.sleep(max(GC_PAUSE_S, (time.monotonic() - began) * ratio))

    async def _archive_events(self, directory: Path, retention_ms: int, dry_run: bool, ratio: float) -> int:
        """Copy old events to the archive and then delete them, a page at a time; how many went (or would)."""
        rows, more = await self._read(ops.old_events, retention_ms, 0, GC_EVENTS_PAGE, not dry_run)
        if not rows:
            return 0
        if dry_run:
            count = len(rows)
            while more:
                async with self._page(ratio):
                    rows, more = await self._read(ops.old_events, retention_ms, rows[-1]["id"], GC_EVENTS_PAGE, False)
                count += len(rows)
            return count
        with archive.exclusive(directory) as ours, archive.Writer(directory) as writer:
            if not ours:
                log.info("gc: another process is archiving events of %s; leaving them to it", directory)
                return 0
            count, after, more, written = 0, 0, True, []  # read again: the first page came before the lock
            while more:
                async with self._page(ratio):
                    rows, more = await self._read(ops.old_events, retention_ms, after, GC_EVENTS_PAGE, True)
                    lines = ops.archive_lines(rows)
                if rows:
                    # Not paced: writing holds neither the event loop nor the store.
                    await anyio.to_thread.run_sync(writer.write, lines)
                    written.append([row["id"] for row in rows])
                    after = rows[-1]["id"]
                more = more and bool(rows)
                if written and (len(written) >= GC_SYNC_EVERY or not more):
                    count += await self._trim_archived(writer, written, ratio)
                    written = []
        return count

    async def _trim_archived(self, writer: archive.Writer, pages: list[list[int]], ratio: float) -> int:
        """Copy, then delete: the archive is synced to disk before any of these events is deleted."""
        await anyio.to_thread.run_sync(writer.sync)
        count = 0
        for ids in pages:
            async with self._page(ratio):
                count += await self._write(ops.trim_events, ids)
        await self._gc_flush()
        return count

    async def gc_now_and_then(self, retention_days: float, every_s: float) -> None:
        """Run `gc` about every ``every_s`` seconds for as long as the caller (a server's lifespan) lets it.

        The first run comes at a random moment of the second half of the first interval (at most
        GC_FIRST_WITHIN_S), so servers started together do not all run it at once and a short-lived
        server runs none; a run that finds nothing writes nothing.
        """
        if not self.operations:
            return
        await anyio.sleep(random.uniform(0.5, 1.0) * min(every_s, GC_FIRST_WITHIN_S))
        while True:
            try:
                result = await self.gc(retention_days, by=SYSTEM_AGENT)
                if result.deliveries or result.events:
                    log.info("gc: %s", result.model_dump_json())
            except Conflict as exc:  # another server of the store runs it now (PostgreSQL): its turn
                log.info("gc: %s", exc)
            except Exception:  # the top of a background task: a failed gc must not stop the server's calls
                log.exception("gc failed; trying again in %.0f s", every_s)
            await anyio.sleep(every_s * random.uniform(0.9, 1.1))

    async def stats(self) -> StatsResult:
        """Queues per agent, locks, deliveries by state, the audit log's span, and the store's size."""
        self._operations('stats')
        result = await self._read(ops.stats)
        result.store = await self.store_size()
        return result

    async def dead_letters(self, agent: str | None, limit: int) -> DeadResult:
        """Dead deliveries (of ``agent``, else everyone's), oldest first. Reads only."""
        self._operations('dead')
        return await self._read(ops.dead_letters, agent, limit)

    async def redrive(self, by: str, message_id: str | None, agent: str | None) -> RedriveResult:
        """Dead deliveries (of ``message_id``, else all; to ``agent``, else anyone) queued again, attempts from 0."""
        self._operations('redrive')
        return await self._write(ops.redrive, by, message_id, agent)

    async def force_release(self, by: str, resource: str, holder: str | None) -> ForceReleaseResult:
        """Release the locks on exactly ``resource`` (of ``holder``, else anyone's) without their holder."""
        self._operations('locks release --force')
        return await self._write(ops.force_release, by, resource, holder)

    async def forget_agent(self, by: str, agent: str, force: bool) -> ForgetResult:
        """Take ``agent`` out of the known agents; with ``force`` even while live, with messages or locks."""
        self._operations('agents forget')
        return await self._write(ops.forget, by, agent, force)

    def _operations(self, verb: str) -> None:
        if not self.operations:
            raise Invalid(
                f"teamroom {verb} does not run on a {type(self).__name__} yet; on PostgreSQL use the"
                " database's own tools (psql, pg_dump) meanwhile"
            )

    # What a backend may supply for operations; these defaults say it has none.

    async def _gc_flush(self) -> None:  # noqa: B027 - a hook: most backends have nothing to do here
        """After some pages of gc's deletes: fold them into the store, off the event loop, so that the
        agents' own commits do not have to (SQLite: a checkpoint of the write-ahead log)."""

    def archive_dir(self) -> Path | None:
        """Where gc appends the audit events it trims; None: this backend keeps every event."""
        return None

    async def store_size(self) -> StoreSize | None:
        return None

    async def backup(self, target: Path) -> Path:
        """A consistent copy of the live store at ``target`` (a file, or a directory to put one in)."""
        raise Invalid("this store cannot be copied by teamroom backup; use its database's own backup tools")


# --- verbs made of several rules --------------------------------------------------------------


def _register(tx: Tx, agent: str, role, capabilities, description, session_id: str | None) -> AgentRecord:
    record = agents.register(tx, agent, role, capabilities, description)
    if session_id is not None:
        sessions.bind(tx, session_id, agent, "claude", replace=False)
    return record


def _heartbeat(tx: Tx, agent: str, status: str | None, task: str | None, note: str | None) -> HeartbeatResult:
    agents.set_status(tx, agent, status, task, note)
    leases_renewed = messages.renew_leases(tx, agent)
    locks_renewed, held = locks.renew(tx, agent)
    return HeartbeatResult(
        unread=messages.unread(tx, agent),
        locks=held,
        leases_renewed=leases_renewed + locks_renewed,
        server_time=iso(tx.now),
        board_unread=board.unread_by_scope(tx, agent),
    )

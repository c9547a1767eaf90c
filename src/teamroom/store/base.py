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
- **Whose clock.** Every expiry (leases, TTLs, lock lifetimes, liveness) is decided by the
  store's `Clock`, read once per transaction after the write lock is taken (``tx.now``), never by
  the database's clock or a caller's. Tests move a `ManualClock` instead of sleeping.
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
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, TypeVar

import anyio

from teamroom.errors import TeamroomError
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
from teamroom.schemas.locks import ClaimResult, LocksResult, ReleaseResult
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
    sessions,
    web,
)
from teamroom.store.tx import Tx, iso

T = TypeVar("T")
log = logging.getLogger(__name__)

SWEEP_EVERY_MS = 1_000


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

"""The Store interface: async domain verbs that return schemas.

Arguments arrive validated by tools/; a Store enforces the rules that need the data (who owns
what, which lease is current) atomically, and raises `teamroom.errors` for refusals. Every verb
takes the calling ``agent`` and records it as seen.
"""

from __future__ import annotations

import abc
import time
from typing import Any, Protocol

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
    """Everything the tools need from storage."""

    clock: Clock

    # lifecycle
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # change notification, for blocking waits
    @abc.abstractmethod
    def change_token(self) -> Any:
        """An opaque marker of the store's state now; see `wait_for_change`."""

    @abc.abstractmethod
    async def wait_for_change(self, token: Any, timeout: float) -> bool:
        """Wait until any process commits after ``token`` was taken, or ``timeout`` seconds pass."""

    # agents
    @abc.abstractmethod
    async def register(
        self,
        agent: str,
        role: str | None,
        capabilities: list[str] | None,
        description: str | None,
        session_id: str | None = None,
    ) -> AgentRecord:
        """Create or update ``agent``; with ``session_id``, bind that client session to it if unbound."""

    @abc.abstractmethod
    async def heartbeat(
        self, agent: str, status: str | None, task: str | None, note: str | None
    ) -> HeartbeatResult: ...

    @abc.abstractmethod
    async def agents(
        self, agent: str | None, role: str | None, capability: str | None, include_offline: bool
    ) -> AgentsResult: ...

    # messages
    @abc.abstractmethod
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
    ) -> SendResult: ...

    @abc.abstractmethod
    async def lease(
        self, agent: str, limit: int, lease_seconds: int, kinds: list[str] | None, thread_id: str | None
    ) -> PollResult:
        """Lease up to ``limit`` ready deliveries of ``agent``, highest priority first, then oldest."""

    @abc.abstractmethod
    async def next_ready_in(self, agent: str, kinds: list[str] | None, thread_id: str | None) -> float | None:
        """Seconds until a delivery of ``agent`` can be leased (0: now), None if none is waiting. Reads only."""

    @abc.abstractmethod
    async def ack(self, agent: str, receipts: list[str]) -> AckResult: ...

    @abc.abstractmethod
    async def nack(self, agent: str, receipt: str, reason: str | None, retry_after_seconds: float) -> NackResult: ...

    @abc.abstractmethod
    async def thread(self, agent: str | None, thread_id: str, limit: int) -> ThreadResult: ...

    @abc.abstractmethod
    async def inbox(self, agent: str, limit: int) -> InboxResult:
        """The deliveries waiting for ``agent``, without leasing them (for humans and resources)."""

    # board
    @abc.abstractmethod
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

    @abc.abstractmethod
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

    # handoffs
    @abc.abstractmethod
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

    @abc.abstractmethod
    async def resume(self, agent: str, task: str | None, handoff_id: str | None) -> ResumeResult:
        """Take the handoff named, the newest for ``task``, or the newest addressed to ``agent`` or its own;
        its transferred locks move to ``agent``."""

    # locks
    @abc.abstractmethod
    async def claim_lock(
        self, agent: str, resources: list[str], mode: str, ttl_seconds: int, reason: str | None
    ) -> ClaimResult:
        """Grant all of ``resources`` (normalised) to ``agent`` or none; renewing what it holds keeps tokens."""

    @abc.abstractmethod
    async def lock_clear_in(self, agent: str, resources: list[str], mode: str) -> float:
        """Seconds until the first live lock in the way of this claim expires; 0 when none is. Reads only."""

    @abc.abstractmethod
    async def release_lock(self, agent: str, resources: list[str] | None) -> ReleaseResult:
        """Release the caller's locks on ``resources`` (all of them when None), all or nothing."""

    @abc.abstractmethod
    async def locks(
        self, agent: str | None, resource: str | None, holder: str | None, limit: int | None
    ) -> LocksResult:
        """Live locks overlapping ``resource`` (or all) held by ``holder`` (or anyone); ``limit`` None: all."""

    # audit log
    @abc.abstractmethod
    async def events(
        self, after_id: int, limit: int, agent: str | None = None, kinds: list[str] | None = None
    ) -> EventsResult: ...

    # --- web: the dashboard's reads (issue 16) ---
    @abc.abstractmethod
    async def recent_threads(self, limit: int) -> list[str]:
        """Ids of the threads with the newest messages, newest first. Reads only."""

    @abc.abstractmethod
    async def board_scopes(self) -> list[str]:
        """Names of every board scope, in the order opened. Reads only."""
    # --- cli and agent economy (issue 12) ---------------------------------------------------
    @abc.abstractmethod
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

    @abc.abstractmethod
    async def send_on_behalf(self, by: str, agent: str, to: list[str] | None, body: str, **opts: Any) -> SendResult:
        """`send` as the existing ``agent`` for ``by`` (a human at the CLI): not seen, its events name ``by``."""

    @abc.abstractmethod
    async def known_names(self) -> dict[str, list[str]]:
        """``{"agents": [...], "scopes": [...]}``: every name a caller may refer to. Reads only."""

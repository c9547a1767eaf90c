"""send, poll, ack, nack, thread; and the read-only inbox and events views."""

from __future__ import annotations

import time
from typing import Any

from teamroom.errors import Invalid
from teamroom.schemas import AckResult, EventsResult, InboxResult, NackResult, PollResult, SendResult, ThreadResult
from teamroom.schemas.common import MESSAGE_KINDS, PRIORITIES, Limits
from teamroom.store import Store
from teamroom.tools import _check


async def send(
    store: Store,
    agent: str | None,
    to: str | list[str] | None,
    body: str,
    subject: str | None = None,
    kind: str | None = None,
    payload: dict[str, Any] | None = None,
    priority: str | None = None,
    thread_id: str | None = None,
    reply_to: str | None = None,
    ttl_seconds: int | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
) -> SendResult:
    """Send a message: one delivery per recipient, each leased, acked and retried on its own."""
    agent = _check.agent_name(agent)
    to_, body_, opts = _send_args(
        to, body, subject, kind, payload, priority, thread_id, reply_to, ttl_seconds, max_attempts, idempotency_key
    )
    return await store.send(agent, to_, body_, **opts)


async def send_on_behalf(store: Store, by: str, agent: str, to: str | list[str] | None, body: str, **options: Any):
    """Send as the existing ``agent`` for ``by`` (a human at the CLI): the agent does not look alive for it,
    and the audit log's send event names ``by``."""
    agent = _check.agent_name(agent, "--as")
    names = ("subject", "kind", "payload", "priority", "thread_id", "reply_to", "ttl_seconds", "max_attempts")
    to_, body_, opts = _send_args(to, body, *(options.get(k) for k in names), options.get("idempotency_key"))
    return await store.send_on_behalf(_check.agent_name(by, "by"), agent, to_, body_, **opts)


def _send_args(
    to, body, subject, kind, payload, priority, thread_id, reply_to, ttl_seconds, max_attempts, idempotency_key
) -> tuple[list[str] | None, str, dict[str, Any]]:
    """send's arguments checked: (to, body, the store's keyword options)."""
    return (
        _check.addresses(to),
        _check.text("body", body, 0, required=True, max_bytes=Limits.BODY_BYTES),
        dict(
            subject=_check.text("subject", subject, Limits.TITLE_CHARS),
            kind=_check.one_of("kind", kind, MESSAGE_KINDS, "text"),
            payload=_check.payload(payload),
            priority=PRIORITIES[_check.one_of("priority", priority, tuple(PRIORITIES), "normal")],
            thread_id=_check.label("thread_id", thread_id),
            reply_to=_check.label("reply_to", reply_to, 32),
            ttl_seconds=_check.whole("ttl_seconds", ttl_seconds, Limits.MESSAGE_TTL_SECONDS),
            max_attempts=_check.whole("max_attempts", max_attempts, Limits.MAX_ATTEMPTS, 5),
            idempotency_key=_check.label("idempotency_key", idempotency_key, 200),
        ),
    )


async def poll(
    store: Store,
    agent: str | None,
    limit: int | None = None,
    lease_seconds: int | None = None,
    wait_seconds: float | None = None,
    kinds: list[str] | None = None,
    thread_id: str | None = None,
    ack: list[str] | None = None,
    by: str | None = None,
) -> PollResult:
    """Lease waiting messages; with wait_seconds, block until one arrives (from any process) or time runs out.

    ``ack``: receipts of the messages just handled, acked first in the same transaction (all or
    nothing, as `ack`), so an agent's loop costs one call per message handled, not two. ``by``: a
    human at the CLI polling for the existing ``agent`` (its liveness untouched, the log names ``by``).
    """
    agent = _check.agent_name(agent)
    receipts = _receipts(ack, required=False)
    limit = _check.whole("limit", limit, Limits.LIMIT, 10)
    lease_seconds = _check.whole("lease_seconds", lease_seconds, Limits.LEASE_SECONDS, 300)
    wait = float(_check.number_in("wait_seconds", wait_seconds, Limits.WAIT_SECONDS, 0))
    if kinds is not None:
        kinds = [_check.one_of("kinds", k, MESSAGE_KINDS) for k in _check.labels("kinds", kinds, 32)]
    thread_id = _check.label("thread_id", thread_id)

    deadline = time.monotonic() + wait
    acked = 0
    if receipts or by is not None:
        acked, result = await store.ack_then_lease(agent, receipts, limit, lease_seconds, kinds, thread_id, by=by)
    else:
        result = await store.lease(agent, limit, lease_seconds, kinds, thread_id)
    while not result.messages:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # Take the token before looking, so a send that lands in between still wakes us.
        token = store.change_token()
        ready_in = await store.next_ready_in(agent, kinds, thread_id)
        if ready_in == 0:
            if by is None:
                result = await store.lease(agent, limit, lease_seconds, kinds, thread_id)
            else:
                _, result = await store.ack_then_lease(agent, [], limit, lease_seconds, kinds, thread_id, by=by)
            continue
        await store.wait_for_change(token, remaining if ready_in is None else min(remaining, ready_in))
    result.acked = acked
    return result


async def ack(store: Store, agent: str | None, receipts: list[str], by: str | None = None) -> AckResult:
    """Acknowledge handled messages: all receipts or none (an error names the bad ones).

    ``by``: a human at the CLI acking for the existing ``agent`` (see `poll`).
    """
    agent = _check.agent_name(agent)
    if by is None:
        return await store.ack(agent, _receipts(receipts))
    acked, _ = await store.ack_then_lease(agent, _receipts(receipts), 0, 1, None, None, by=by)
    return AckResult(acked=acked)


def _receipts(receipts: list[str] | str | None, *, required: bool = True) -> list[str]:
    """Receipts to ack, checked; ``poll(ack=[])`` acks nothing, an empty ``ack(receipts=[])`` is a mistake."""
    field = "receipts" if required else "ack"
    if receipts is None and not required:
        return []
    if isinstance(receipts, str):
        receipts = [receipts]
    receipts = _check.labels(field, receipts, Limits.LIMIT[1], 64) or []
    if not receipts and required:
        raise Invalid("receipts is empty: pass the receipt of each message you handled, from poll")
    return receipts


async def nack(
    store: Store,
    agent: str | None,
    receipt: str,
    reason: str | None = None,
    retry_after_seconds: float | None = None,
) -> NackResult:
    """Give a message back: it is redelivered (attempt + 1) after retry_after_seconds, or dead at max_attempts."""
    agent = _check.agent_name(agent)
    receipt = _check.label("receipt", receipt, 64)
    reason = _check.text("reason", reason, Limits.SHORT_TEXT_CHARS)
    retry = _check.number_in("retry_after_seconds", retry_after_seconds, (0, Limits.LEASE_SECONDS[1]), 0)
    return await store.nack(agent, receipt, reason, float(retry))


async def thread(store: Store, agent: str | None, thread_id: str, limit: int | None = None) -> ThreadResult:
    """A whole conversation in the order sent, with where each delivery stands."""
    caller = None if agent is None else _check.agent_name(agent)
    thread_id = _check.label("thread_id", thread_id)
    return await store.thread(caller, thread_id, _check.whole("limit", limit, (1, 500), 100))


async def inbox(store: Store, agent: str, limit: int | None = None) -> InboxResult:
    """What waits for ``agent``, seen without leasing anything."""
    return await store.inbox(_check.agent_name(agent), _check.whole("limit", limit, (1, 500), 100))


async def events(
    store: Store,
    after_id: int | None = None,
    limit: int | None = None,
    agent: str | None = None,
    kinds: list[str] | None = None,
) -> EventsResult:
    """The audit log: after an event id, or the newest ``limit`` events."""
    after = -1 if after_id is None else _check.whole("after_id", after_id, (0, 2**62))
    agent = None if agent is None else _check.agent_name(agent)
    limit = _check.whole("limit", limit, (1, 1000), 100)
    return await store.events(after, limit, agent, _check.labels("kinds", kinds, 32))

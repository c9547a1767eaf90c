"""The CLI's and the agent economy's verbs: ack-then-lease in one transaction, sending on behalf of
an agent, and the names a human may mistype.

Built only from the messages and agents SQL, so the rules (receipts, leases, idempotency, who is
known) stay written once.
"""

from __future__ import annotations

from typing import Any

from teamroom.schemas import PollResult, SendResult
from teamroom.store.rules import agents, messages
from teamroom.store.tx import Tx


def ack_then_lease(
    tx: Tx,
    agent: str,
    receipts: list[str],
    limit: int,
    lease_seconds: int,
    kinds: list[str] | None,
    thread_id: str | None,
    by: str | None,
) -> tuple[int, PollResult]:
    """Ack ``receipts`` (all or nothing: a refusal raises and rolls the lease back too), then lease up to
    ``limit`` (0: none). With ``by``, a human acts for the existing ``agent`` (see `Tx.act_for`)."""
    if by is not None:
        agents.require(tx, agent)
        tx.act_for(agent, by)
    acked = messages.ack(tx, agent, receipts).acked if receipts else 0
    return acked, messages.lease(tx, agent, limit, lease_seconds, kinds, thread_id)


def send_on_behalf(tx: Tx, by: str, agent: str, to: list[str] | None, body: str, opts: dict[str, Any]) -> SendResult:
    """Send as ``agent``, which must exist, for ``by``: ``agent``'s liveness stays as it was."""
    agents.require(tx, agent)
    tx.act_for(agent, by)
    return messages.send(tx, agent, to, body, opts)


def known_names(tx: Tx) -> dict[str, list[str]]:
    """Every agent and board scope the store knows, sorted: what a mistyped name is checked against."""
    return {
        "agents": agents.known_names(tx),
        "scopes": [r[0] for r in tx.all("cli.scope_names")],
    }

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


class OnBehalfTx(Tx):
    """The same open transaction, seen as ``by`` acting for ``agent``.

    ``agent`` is not marked as seen (a human typing at a terminal says nothing about whether the
    agent is alive), and every audit event recorded for ``agent`` names ``by``, so the log tells a
    message a human sent as ``builder-1`` from one that builder-1 sent.
    """

    __slots__ = ("acting_for", "by")

    def __init__(self, tx: Tx, agent: str, by: str) -> None:
        # The very same transaction: connection, time, queries, and the store's caches (so the store
        # learns of every other agent's touch as usual).
        for name in Tx.__slots__:
            setattr(self, name, getattr(tx, name))
        self.acting_for, self.by = agent, by

    def touch(self, agent: str) -> None:
        if agent != self.acting_for:
            super().touch(agent)

    def event(self, agent: str | None, kind: str, subject: str | None = None, /, **data: Any) -> None:
        if agent == self.acting_for:
            data["by"] = self.by
        super().event(agent, kind, subject, **data)


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
    ``limit`` (0: none). With ``by``, a human acts for the existing ``agent`` (see `OnBehalfTx`)."""
    if by is not None:
        agents.require(tx, agent)
        tx = OnBehalfTx(tx, agent, by)
    acked = messages.ack(tx, agent, receipts).acked if receipts else 0
    return acked, messages.lease(tx, agent, limit, lease_seconds, kinds, thread_id)


def send_on_behalf(tx: Tx, by: str, agent: str, to: list[str] | None, body: str, opts: dict[str, Any]) -> SendResult:
    """Send as ``agent``, which must exist, for ``by``: ``agent``'s liveness stays as it was."""
    agents.require(tx, agent)
    return messages.send(OnBehalfTx(tx, agent, by), agent, to, body, opts)


def known_names(tx: Tx) -> dict[str, list[str]]:
    """Every agent and board scope the store knows, sorted: what a mistyped name is checked against."""
    return {
        "agents": agents.known_names(tx),
        "scopes": [r[0] for r in tx.all("cli.scope_names")],
    }

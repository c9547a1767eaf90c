"""A human at the CLI: their own inbox (``poll``, ``ack``), and sending for an agent on its behalf.

A human is an agent named ``human`` (``send`` sends as it), so an agent's reply to ``human`` waits
in an inbox the human polls and acks like any agent. Acting for another agent (``--as NAME``) is
done on its behalf: NAME must exist, it does not look alive for it, and the audit log names the
human (``by: human``).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from teamroom.config import Settings
from teamroom.console import PRIORITY_STYLE, Out, _styled, store_for, when
from teamroom.text import clip
from teamroom.tools import messages as message_tools

HUMAN = "human"


def by_for(agent: str) -> str | None:
    """Who acts, when the CLI acts for ``agent``: None when the human acts as themself."""
    return None if agent == HUMAN else HUMAN


async def send(settings: Settings, out: Out, sender: str, to: str, body: str, **options: Any) -> int:
    """Send as ``human`` (a known agent from then on), or for an existing agent on its behalf."""
    recipients: str | list[str] = to.split(",") if "," in to else to
    async with store_for(settings, create=True) as store:
        if by_for(sender) is None:
            result = await message_tools.send(store, sender, recipients, body, **options)
        else:
            result = await message_tools.send_on_behalf(store, HUMAN, sender, recipients, body, **options)
    if out.json:
        out.data(result)
    else:
        dup = " (duplicate: nothing new sent)" if result.duplicate else ""
        behalf = "" if sender == HUMAN else f" (on behalf of {escape(sender)}, logged as by {HUMAN})"
        out.print(
            f"sent {result.message_id} as {escape(sender)}{behalf} to {escape(', '.join(result.recipients))}"
            f" in thread {escape(result.thread_id)}{dup}"
        )
    return 0


async def poll(
    settings: Settings, out: Out, agent: str, limit: int, lease_seconds: int, wait: float,
    kinds: list[str] | None, ack: list[str] | None,
) -> int:  # fmt: skip
    """Lease ``agent``'s next messages (acking ``ack`` first) and print each with the receipt to ack it by."""
    async with store_for(settings) as store:
        result = await message_tools.poll(
            store, agent, limit, lease_seconds, wait, kinds, None, ack or None, by=by_for(agent)
        )
    if out.json:
        out.data(result)
        return 0
    if result.acked:
        out.print(Text(f"acked {result.acked}", style="green"))
    if not result.messages:
        out.print(Text(f"nothing waits for {agent}", style="dim"))
        return 0
    table = Table(title=f"leased for {agent}: teamroom ack RECEIPT when handled", title_justify="left")
    for column in ("receipt", "id", "from", "priority", "kind", "subject / body", "try", "lease ends"):
        table.add_column(column, no_wrap=column == "receipt")
    for m in result.messages:
        table.add_row(
            m.receipt, m.message_id, m.from_, _styled(m.priority, PRIORITY_STYLE), m.kind,
            clip(m.subject or m.body, 60), f"{m.attempt}/{m.max_attempts}", when(m.lease_expires_at),
        )  # fmt: skip
    out.print(table)
    return 0


async def ack(settings: Settings, out: Out, agent: str, receipts: list[str]) -> int:
    """Ack receipts from ``teamroom poll``: all or none, as the ack tool."""
    async with store_for(settings) as store:
        result = await message_tools.ack(store, agent, receipts, by=by_for(agent))
    if out.json:
        out.data(result)
    else:
        out.print(f"acked {result.acked}")
    return 0

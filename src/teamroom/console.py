"""The human commands: status, agents, inbox, send, thread, board, locks, log.

Each one opens the store the agents use, calls the same functions in tools/ as the MCP server
(never SQL of its own), and prints tables for a terminal or JSON (``--json``, or whenever stdout
is not a terminal, so scripts can pipe it). A human reads with no agent identity (agent=None:
nothing moves, nobody looks alive) and writes as an agent of its own, ``human`` by default.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.table import Table
from rich.text import Text

from teamroom.config import Settings
from teamroom.errors import StoreUnavailable
from teamroom.names import check_names
from teamroom.store import Store, open_store
from teamroom.text import clip
from teamroom.tools import agents as agent_tools
from teamroom.tools import board as board_tools
from teamroom.tools import locks as lock_tools
from teamroom.tools import messages as message_tools

LIVENESS_STYLE = {"live": "green", "stale": "yellow", "offline": "dim"}
STATE_STYLE = {"queued": "cyan", "leased": "yellow", "acked": "green", "dead": "red", "expired": "magenta"}
PRIORITY_STYLE = {"urgent": "bold red", "high": "yellow", "normal": "", "low": "dim"}


class Out:
    """Where results go: JSON for scripts, rich tables for a terminal."""

    def __init__(self, as_json: bool | None) -> None:
        self.json = (not sys.stdout.isatty()) if as_json is None else as_json
        # A pipe gets no terminal width; tables forced into one (--table) get room enough not to cut names.
        self.console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)

    def data(self, value: Any) -> None:
        print(json.dumps(plain(value), indent=2, ensure_ascii=False))

    def line(self, value: Any) -> None:
        """One JSON document per line (``log --follow``)."""
        print(json.dumps(plain(value), ensure_ascii=False), flush=True)

    def print(self, *renderables: Any, **options: Any) -> None:
        self.console.print(*renderables, **options)


def plain(value: Any) -> Any:
    """Models and lists of models as JSON-ready data, by alias (``from``)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@asynccontextmanager
async def store_for(settings: Settings, *, create: bool = False) -> AsyncIterator[Store]:
    """The agents' store; reading commands refuse to create one where none is (a wrong --db, most likely)."""
    if not create and isinstance(settings.db_path, Path) and not settings.db_path.is_file():
        raise StoreUnavailable(
            f"no store at {settings.db_path} (chosen by {settings.db_origin}); no agent has used teamroom here yet,"
            " or pass --db (or TEAMROOM_DB) the store the agents use"
        )
    store = open_store(settings.db_path, durability=settings.durability)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


# --- time -----------------------------------------------------------------------------------


def when(stamp: str | None, now: datetime | None = None) -> str:
    """``12 s ago`` / ``in 4 min`` for an ISO time."""
    if not stamp:
        return "-"
    now = now or datetime.now(UTC)
    delta = (datetime.fromisoformat(stamp) - now).total_seconds()
    text = _span(abs(delta))
    return f"in {text}" if delta > 0 else f"{text} ago"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min"
    if seconds < 36 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _styled(value: str | None, styles: dict[str, str]) -> Text:
    return Text(value or "-", style=styles.get(value or "", ""))


# --- agents and status ----------------------------------------------------------------------


async def agents(settings: Settings, out: Out, include_offline: bool) -> int:
    async with store_for(settings) as store:
        result = await agent_tools.agents(store, None, include_offline=include_offline)
    if out.json:
        out.data(result)
    else:
        out.print(_agents_table(result.agents, include_offline))
    return 0


def _agents_table(entries: list[Any], include_offline: bool, queues: dict[str, dict[str, int]] | None = None) -> Any:
    if not entries:
        hint = "" if include_offline else " in the last 15 minutes (--all shows everyone ever seen)"
        return Text(f"no agents{hint}", style="dim")
    table = Table(title="agents", title_justify="left", expand=False)
    table.add_column("agent", no_wrap=True)
    for column in ("role", "liveness", "last seen", "status"):
        table.add_column(column, no_wrap=True)
    table.add_column("task", max_width=40)
    if queues is None:
        table.add_column("unread", justify="right")
    else:
        table.add_column("queued", justify="right")
        table.add_column("leased", justify="right")
    table.add_column("locks")
    for a in entries:
        counts = [str(a.unread)] if queues is None else [str(queues[a.name]["queued"]), str(queues[a.name]["leased"])]
        table.add_row(
            a.name,
            a.role or "-",
            _styled(a.liveness, LIVENESS_STYLE),
            when(a.last_seen),
            a.status or "-",
            clip(a.task, 40) or "-",
            *counts,
            clip(", ".join(a.locks), 40) or "-",
        )
    return table


async def status(settings: Settings, out: Out, include_offline: bool, scope: str | None, board_limit: int) -> int:
    async with store_for(settings) as store:
        await check_names(store, scope=scope)
        found = await agent_tools.agents(store, None, include_offline=True)
        if not include_offline:  # an agent gone quiet with work queued is exactly what a human must see
            found.agents = [a for a in found.agents if a.liveness != "offline" or a.unread or a.leased]
        queues = {a.name: {"queued": a.unread, "leased": a.leased} for a in found.agents}
        locks = (await lock_tools.locks(store, None)).locks
        board = await _recent_board(store, scope, board_limit)
    if out.json:
        out.data(
            {
                "store": str(settings.db_path),
                "store_origin": settings.db_origin,
                "agents": found.agents,
                "queues": queues,
                "locks": locks,
                "board": board,
            }
        )
        return 0
    out.print(Text(f"store {settings.db_path} ({settings.db_origin})", style="dim"))
    out.print(_agents_table(found.agents, include_offline, queues))
    out.print(_locks_table(locks))
    out.print(_board_table(board, f"recent board entries ({scope or 'main'})"))
    return 0


# --- messages ---------------------------------------------------------------------------------


async def inbox(settings: Settings, out: Out, agent: str, limit: int) -> int:
    async with store_for(settings) as store:
        await check_names(store, agents=(agent,))
        result = await message_tools.inbox(store, agent, limit)
    if out.json:
        out.data(result)
        return 0
    if not result.messages:
        out.print(Text(f"nothing waits for {agent}", style="dim"))
        return 0
    table = Table(title=f"inbox of {agent} (peek: nothing is leased)", title_justify="left")
    for column in ("id", "from", "priority", "kind", "subject", "state", "try", "sent", "thread"):
        table.add_column(column)
    for m in result.messages:
        table.add_row(
            m.message_id,
            m.from_,
            _styled(m.priority, PRIORITY_STYLE),
            m.kind,
            clip(m.subject or m.body, 50),
            _styled(m.state, STATE_STYLE),
            str(m.attempt),
            when(m.sent_at),
            m.thread_id,
        )
    out.print(table)
    return 0


async def thread(settings: Settings, out: Out, thread_id: str, limit: int) -> int:
    async with store_for(settings) as store:
        result = await message_tools.thread(store, None, thread_id, limit)
    if out.json:
        out.data(result)
        return 0
    out.print(Text(f"thread {thread_id}", style="bold"))
    for m in result.messages:
        head = Text()
        head.append(f"{m.message_id} ", style="dim")
        head.append(m.from_, style="bold")
        head.append(" -> ")
        for i, d in enumerate(m.deliveries):
            head.append(", " if i else "")
            head.append(d.to)
            head.append(f" [{d.state}]", style=STATE_STYLE.get(d.state, ""))
        head.append(f"  {m.kind}", style="cyan")
        if m.priority != "normal":
            head.append(f" {m.priority}", style=PRIORITY_STYLE[m.priority])
        head.append(f"  {when(m.sent_at)}", style="dim")
        out.print(head)
        if m.subject:
            out.print(Text(f"  {m.subject}", style="bold"))
        out.print(Text("  " + m.body.replace("\n", "\n  ")))
    return 0


# --- locks and board ------------------------------------------------------------------------


async def locks(settings: Settings, out: Out, resource: str | None, holder: str | None) -> int:
    async with store_for(settings) as store:
        await check_names(store, holder=holder)
        result = await lock_tools.locks(store, None, resource=resource, holder=holder)
    if out.json:
        out.data(result)
    else:
        out.print(_locks_table(result.locks))
    return 0


def _locks_table(entries: list[Any]) -> Any:
    if not entries:
        return Text("no live locks", style="dim")
    table = Table(title="locks", title_justify="left")
    for column in ("resource", "holder", "mode", "token", "expires", "reason"):
        table.add_column(column)
    for lock in entries:
        table.add_row(
            lock.resource,
            lock.holder,
            lock.mode,
            str(lock.token),
            when(lock.expires_at),
            clip(lock.reason, 40) or "-",
        )
    return table


async def _recent_board(store: Store, scope: str | None, limit: int, **filters: Any) -> list[Any]:
    """The newest ``limit`` entries of a scope: plain reads from the start (agent None moves no cursor)."""
    entries: list[Any] = []
    since = 0
    while True:
        page = await board_tools.read_board(store, None, scope=scope, since=since, limit=500, **filters)
        entries.extend(page.entries)
        if len(page.entries) < 500:
            return entries[-limit:]
        since = page.entries[-1].seq


async def board(settings: Settings, out: Out, scope: str | None, since: int | None, limit: int, **filters: Any) -> int:
    """Entries after ``since``, or else the newest ``limit``; a human's read moves nobody's cursor."""
    async with store_for(settings) as store:
        await check_names(store, agents=(filters.get("author"),), scope=scope)
        if since is None:
            entries = await _recent_board(store, scope, limit, **filters)
        else:
            page = await board_tools.read_board(store, None, scope=scope, since=since, limit=limit, **filters)
            entries = page.entries
    if out.json:
        out.data({"scope": scope or "main", "entries": entries})
    else:
        out.print(_board_table(entries, f"board {scope or 'main'}"))
    return 0


def _board_table(entries: list[Any], title: str) -> Any:
    if not entries:
        return Text("the board is empty", style="dim")
    table = Table(title=title, title_justify="left")
    for column in ("seq", "scope", "kind", "author", "title / body", "tags", "posted"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            str(e.seq),
            e.scope,
            e.kind,
            e.author,
            clip(e.title or e.body, 60),
            clip(", ".join(e.tags or []), 30) or "-",
            when(e.posted_at),
        )
    return table


# --- the audit log ----------------------------------------------------------------------------


async def log(
    settings: Settings, out: Out, follow: bool, agent: str | None, kinds: list[str] | None, limit: int
) -> int:
    async with store_for(settings) as store:
        await check_names(store, agents=(agent,))
        result = await message_tools.events(store, limit=limit, agent=agent, kinds=kinds)
        if out.json and not follow:
            out.data(result)
            return 0
        for event in result.events:
            _event(out, event)
        if not follow:
            if not result.events:
                out.print(Text("no events", style="dim"))
            return 0
        last = result.events[-1].id if result.events else await _last_event_id(store)
        while True:
            token = store.change_token()
            page = await message_tools.events(store, after_id=last, limit=1000, agent=agent, kinds=kinds)
            for event in page.events:
                _event(out, event)
                last = event.id
            if not page.events:
                await store.wait_for_change(token, 5.0)


async def _last_event_id(store: Store) -> int:
    newest = await message_tools.events(store, limit=1)
    return newest.events[-1].id if newest.events else 0


def _event(out: Out, event: Any) -> None:
    if out.json:
        out.line(event)
        return
    line = Text()
    line.append(f"{event.at[:19].replace('T', ' ')} ", style="dim")
    line.append(f"{event.id:>6} ", style="dim")
    line.append(f"{event.agent or '-':<14} ", style="bold")
    line.append(f"{event.kind:<16} ", style="cyan")
    line.append(event.subject or "")
    if event.data:
        details = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in event.data.items() if v is not None)
        line.append(f"  {clip(details, 100)}", style="dim")
    out.print(line, no_wrap=True, overflow="ellipsis")  # one event, one line, as tail -f


def run(coro_fn: Any, *args: Any, **kwargs: Any) -> int:
    """Run one command on the event loop."""
    return anyio.run(lambda: coro_fn(*args, **kwargs))


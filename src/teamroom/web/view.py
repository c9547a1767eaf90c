"""What the dashboard shows: the store read through tools/, rendered into one HTML fragment per panel.

Every read goes through the same tools/ functions as the MCP tools and the CLI, as a reader with no
agent identity (agent None), so looking moves nothing: no cursor, no lease, nobody marked as seen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2

from teamroom.errors import NotFound
from teamroom.schemas import AgentEntry, BoardEntry, Event, ThreadMessage
from teamroom.store import Store
from teamroom.text import clip
from teamroom.tools import agents as agent_tools
from teamroom.tools import board as board_tools
from teamroom.tools import locks as lock_tools
from teamroom.tools import messages as message_tools
from teamroom.tools import overview

PANELS = ("agents", "threads", "locks", "board", "tasks")
LIVENESS_ORDER = {"live": 0, "stale": 1, "offline": 2}
# Event kinds that never change a thread: a batch made only of these skips re-reading the threads.
NOT_THREADS = frozenset(
    {
        "register", "status", "agent_seen", "session_bound", "scope_opened", "post", "board_read",
        "lock_claim", "lock_renew", "lock_release", "lock_expired", "lock_takeover", "lock_transfer",
        "locks_renewed",
    }
)  # fmt: skip
BOARD_KINDS = frozenset({"post", "scope_opened"})


def dom_id(prefix: str, value: str) -> str:
    """A stable HTML id for any thread or message id (which may hold characters an id cannot)."""
    return f"{prefix}-{hashlib.blake2s(value.encode(), digest_size=6).hexdigest()}"


def hms(stamp: str | None) -> str:
    """``14:03:27`` for an ISO time: the fallback text before the page's script makes it relative."""
    return datetime.fromisoformat(stamp).strftime("%H:%M:%S") if stamp else "-"


def details(data: dict[str, Any] | None) -> str:
    """An event's data as ``key=value`` pairs on one short line."""
    if not data:
        return ""
    pairs = (f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in data.items() if v is not None)
    return clip(" ".join(pairs), 160) or ""


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("teamroom.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(hms=hms, details=details, clip=clip)
    env.globals.update(dom_id=dom_id)
    return env


@dataclass
class Conversation:
    """One thread as the page shows it."""

    thread_id: str
    subject: str
    messages: list[ThreadMessage]
    hidden: int
    participants: list[str]
    last_at: str
    reply_to: str
    reply_name: str
    answered: set[str] = field(default_factory=set)
    open_gates: list[str] = field(default_factory=list)

    @property
    def dom(self) -> str:
        return dom_id("t", self.thread_id)


def conversation(thread_id: str, messages: list[ThreadMessage], actor: str, shown: int) -> Conversation:
    """Who spoke, which decision gates still wait for an answer, and what a reply answers."""
    answered = {m.reply_to for m in messages if m.kind == "answer" and m.reply_to}
    gates = [m.message_id for m in messages if m.kind == "decision_gate" and m.message_id not in answered]
    people = list(dict.fromkeys(name for m in messages for name in (m.from_, *(d.to for d in m.deliveries))))
    others = [m for m in messages if m.from_ != actor]
    target = (others or messages)[-1]
    first = messages[0]
    return Conversation(
        thread_id=thread_id,
        subject=first.subject or clip(first.body.splitlines()[0] if first.body else "", 80) or thread_id,
        messages=messages[-shown:],
        hidden=max(0, len(messages) - shown),
        participants=people,
        last_at=messages[-1].sent_at,
        reply_to=target.message_id,
        reply_name=target.from_,
        answered=answered,
        open_gates=gates,
    )


class ScopeCache:
    """One board scope's newest entries, read on from the last seq seen (entries are append-only)."""

    KEEP = 200

    def __init__(self, name: str) -> None:
        self.name = name
        self.owner: str | None = None
        self.entries: list[BoardEntry] = []
        self.seq = 0

    async def refresh(self, store: Store) -> None:
        while True:
            page = await board_tools.read_board(store, None, scope=self.name, since=self.seq, limit=500)
            self.owner = page.owner
            if not page.entries:
                return
            replaced = {e.supersedes for e in page.entries if e.supersedes}
            self.entries = [e for e in self.entries if e.id not in replaced] + page.entries
            self.entries = self.entries[-self.KEEP :]
            self.seq = page.entries[-1].seq
            if len(page.entries) < 500:
                return


class View:
    """Reads the store and renders the panels; one per app, shared by every page it serves."""

    def __init__(
        self, store: Store, *, csrf: str, actor: str = "human", threads: int = 12, messages: int = 40
    ) -> None:
        self.store = store
        self.csrf = csrf  # forms in the panels carry it; the panels are rendered once for every page
        self.actor = actor
        self.threads = threads
        self.messages = messages
        self.env = environment()
        self._scopes: dict[str, ScopeCache] = {}
        self._agents: dict[str, AgentEntry] = {}

    async def panels(self, kinds: set[str] | None = None) -> dict[str, str]:
        """The panels a batch of events of ``kinds`` may have changed (None: all of them), rendered."""
        out = {"agents": await self._render_agents(), "locks": await self._render_locks()}
        if kinds is None or kinds - NOT_THREADS:
            out["threads"] = await self._render_threads()
        if kinds is None or kinds & BOARD_KINDS:
            out["board"] = await self._render_board()
        if kinds is None:
            out["tasks"] = self._render("panels/tasks.html")
        return out

    def _render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(actor=self.actor, csrf=self.csrf, **context)

    async def _render_agents(self) -> str:
        found = (await agent_tools.agents(self.store, None, include_offline=True)).agents
        found.sort(key=lambda a: (LIVENESS_ORDER[a.liveness], a.name))
        self._agents = {a.name: a for a in found}
        return self._render("panels/agents.html", agents=found)

    async def _render_locks(self) -> str:
        held = (await lock_tools.locks(self.store, None)).locks
        liveness = {name: a.liveness for name, a in self._agents.items()}
        return self._render("panels/locks.html", locks=held, liveness=liveness)

    async def _render_threads(self) -> str:
        found = []
        for thread_id in await overview.recent_threads(self.store, self.threads):
            try:
                result = await message_tools.thread(self.store, None, thread_id, 500)
            except NotFound:  # retention removed it between the two reads
                continue
            found.append(conversation(thread_id, result.messages, self.actor, self.messages))
        return self._render("panels/threads.html", conversations=found)

    async def _render_board(self) -> str:
        for name in await overview.board_scopes(self.store):
            await self._scopes.setdefault(name, ScopeCache(name)).refresh(self.store)
        return self._render("panels/board.html", scopes=list(self._scopes.values()))

    def event_rows(self, events: list[Event]) -> list[str]:
        """One ``<li>`` per audit event, newest last."""
        template = self.env.get_template("event.html")
        return [template.render(e=e) for e in events]

    def page(self, **context: Any) -> str:
        return self._render("page.html", **context)

"""The live feed: one watcher per process waits on the store's wake-ups and fans each change out to every page.

The watcher takes ``store.change_token()``, waits with ``store.wait_for_change``, then reads the audit
events after the last one it sent and re-renders the panels those events may have touched, once for
all pages. A page gets only what differs from what the watcher last sent. It runs only while some
page is connected, so an idle dashboard costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

from teamroom.errors import TeamroomError
from teamroom.store import Store
from teamroom.tools import messages as message_tools
from teamroom.web.view import View

log = logging.getLogger(__name__)

REFRESH_S = 15.0  # liveness (live -> stale -> offline) moves with time alone: re-render at least this often
BACKLOG = 32  # updates queued for one page; a page that falls further behind is dropped and reconnects
CATCH_UP_EVENTS = 200
READ_EVENTS = 1000


@dataclass
class Update:
    """What one page is sent at once: the last event id, changed panels, new audit rows, a status line."""

    id: int
    panels: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    status: str | None = None

    def __bool__(self) -> bool:
        return bool(self.panels or self.events or self.status)


class Feed:
    """The per-process fan-out of store changes to connected pages (server-sent events)."""

    def __init__(self, store: Store, view: View, *, refresh_s: float = REFRESH_S, backlog: int = BACKLOG) -> None:
        self.store = store
        self.view = view
        self.refresh_s = refresh_s
        self.backlog = backlog
        self.last_id = 0
        self.panels: dict[str, str] = {}
        self.watchers_started = 0  # tests check that many pages share one watcher
        self._pages: set[asyncio.Queue[Update | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def pages(self) -> int:
        return len(self._pages)

    @property
    def watching(self) -> bool:
        return self._task is not None and not self._task.done()

    @asynccontextmanager
    async def subscribe(self, after: int) -> AsyncIterator[tuple[Update, asyncio.Queue[Update | None]]]:
        """Join the feed: what a page that has seen events up to ``after`` is missing, then a queue of updates."""
        queue: asyncio.Queue[Update | None] = asyncio.Queue(self.backlog)
        async with self._lock:
            if not self.watching:
                await self._publish(None)  # the state as it is now, before any page is told anything
                self._task = asyncio.create_task(self._watch(), name="teamroom-web-feed")
                self.watchers_started += 1
            self._pages.add(queue)
            first = await self._catch_up(after)
        try:
            yield first, queue
        finally:
            self._pages.discard(queue)
            if not self._pages:
                self._stop()  # not awaited: this runs as a page's request is being cancelled

    def _stop(self) -> asyncio.Task[None] | None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    async def close(self) -> None:
        """Stop the watcher and end every page's stream (the app's owner calls this before closing the store)."""
        for queue in list(self._pages):
            self._drop(queue)
        task = self._stop()
        if task is not None:
            with suppress(asyncio.CancelledError):
                await task

    async def _catch_up(self, after: int) -> Update:
        """Everything since ``after``: the panels (when anything happened since) and the recent audit rows."""
        if after >= self.last_id:
            return Update(self.last_id)
        since = max(after, self.last_id - CATCH_UP_EVENTS)
        events = (await message_tools.events(self.store, after_id=since, limit=CATCH_UP_EVENTS)).events
        return Update(self.last_id, dict(self.panels), self.view.event_rows(events))

    async def _watch(self) -> None:
        token = self.store.change_token()
        while True:
            changed = await self.store.wait_for_change(token, self.refresh_s)
            token = self.store.change_token()  # before reading: a commit during the read wakes the next wait
            try:
                async with self._lock:
                    await self._publish(set() if changed else None)
            except TeamroomError as exc:  # the store went away or broke: say so on every page, keep trying
                log.warning("dashboard feed: %s", exc)
                self._send(Update(self.last_id, status=str(exc)))
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("dashboard feed failed; retrying")
                self._send(Update(self.last_id, status="internal: the dashboard's feed failed; see its log"))
                await asyncio.sleep(1.0)

    async def _publish(self, kinds: set[str] | None) -> None:
        """Read the new events, re-render what they may have changed, send what differs. ``kinds`` None: all."""
        events = []
        while True:
            page = (await message_tools.events(self.store, after_id=self.last_id, limit=READ_EVENTS)).events
            events.extend(page)
            if page:
                self.last_id = page[-1].id
            if len(page) < READ_EVENTS:
                break
        if kinds is not None:
            kinds = {e.kind for e in events}
        rendered = await self.view.panels(kinds)
        changed = {name: html for name, html in rendered.items() if self.panels.get(name) != html}
        self.panels.update(changed)
        self._send(Update(self.last_id, changed, self.view.event_rows(events[-CATCH_UP_EVENTS:])))

    def _send(self, update: Update) -> None:
        if not update:
            return
        for queue in list(self._pages):
            try:
                queue.put_nowait(update)
            except asyncio.QueueFull:
                self._drop(queue)

    def _drop(self, queue: asyncio.Queue[Update | None]) -> None:
        """End a page's stream: its browser reconnects with the last id it has and catches up."""
        self._pages.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)

"""What the contract tests share: the verbs with their usual arguments, and a backend-neutral view
of everything a store holds (equal views: nothing changed).

The helpers only fill in defaults; every call goes to the Store verb of the same name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from teamroom.errors import TeamroomError
from teamroom.schemas import Event, PollResult, ReadBoardResult, SendResult
from teamroom.schemas.common import PRIORITIES
from teamroom.store import Store

# --- the verbs, with the arguments the tools would pass by default ----------------------------


async def register(store: Store, agent: str, role: str | None = None, capabilities: list[str] | None = None) -> None:
    await store.register(agent, role, capabilities, None)


async def send(
    store: Store, sender: str, to: str | list[str] | None, body: str = "hello", **options: Any
) -> SendResult:
    """``to`` may be one name; ``priority`` may be its name ('high')."""
    opts: dict[str, Any] = {
        "subject": None, "kind": "text", "payload": None, "priority": 1, "thread_id": None, "reply_to": None,
        "ttl_seconds": None, "max_attempts": 5, "idempotency_key": None,
    }  # fmt: skip
    opts.update(options)
    if isinstance(opts["priority"], str):
        opts["priority"] = PRIORITIES[opts["priority"]]
    return await store.send(sender, [to] if isinstance(to, str) else to, body, **opts)


async def lease(
    store: Store,
    agent: str,
    limit: int = 10,
    lease_seconds: int = 300,
    kinds: list[str] | None = None,
    thread_id: str | None = None,
) -> PollResult:
    return await store.lease(agent, limit, lease_seconds, kinds, thread_id)


async def post(
    store: Store,
    agent: str,
    body: str,
    *,
    scope: str | None = None,
    kind: str | None = None,
    title: str | None = None,
    tags: Iterable[str] = (),
    refs: Iterable[str] = (),
    supersedes: str | None = None,
):
    return await store.post_finding(
        agent, body, title=title, scope=scope, kind=kind, tags=list(tags), refs=list(refs), supersedes=supersedes
    )


async def read(
    store: Store,
    agent: str | None,
    scope: str = "main",
    *,
    since: int | None = None,
    kinds: list[str] | None = None,
    author: str | None = None,
    tags: list[str] | None = None,
    limit: int = 50,
    include_superseded: bool = False,
) -> ReadBoardResult:
    return await store.read_board(
        agent, scope, since=since, kinds=kinds, author=author, tags=tags, limit=limit,
        include_superseded=include_superseded,
    )  # fmt: skip


async def claim(
    store: Store, agent: str, resources: list[str], mode: str = "exclusive", ttl: int = 900, reason: str | None = None
):
    return await store.claim_lock(agent, resources, mode, ttl, reason)


async def handoff(
    store: Store,
    agent: str,
    task: str,
    *,
    summary: str = "half done",
    next_step: str = "finish it",
    to: list[str] | None = None,
    transfer_locks: bool = False,
    **fields: Any,
):
    record = {"done": [], "remaining": [], "blockers": [], "files": [], "branch": None, "scope": None, **fields}
    return await store.handoff(agent, task, summary, next_step, record, to, transfer_locks)


async def events(store: Store, kind: str | None = None, agent: str | None = None) -> list[Event]:
    """The whole audit log, in order (of one kind, of one agent)."""
    return (await store.events(0, 100_000, agent, None if kind is None else [kind])).events


async def holders(store: Store) -> dict[str, str]:
    """{resource: holder} of every live lock."""
    return {lock.resource: lock.holder for lock in (await store.locks(None, None, None, None)).locks}


def bodies(result: PollResult | ReadBoardResult) -> list[str]:
    return [m.body for m in (result.messages if isinstance(result, PollResult) else result.entries)]


# --- "a refusal changes nothing" ----------------------------------------------------------------


async def view(store: Store) -> dict[str, Any]:
    """Everything the store holds, as its read-only verbs show it (none of them names a caller)."""
    names = await store.known_names()
    threads = await store.recent_threads(10_000)
    scopes = await store.board_scopes()
    return {
        "names": names,
        "agents": (await store.agents(None, None, None, True)).model_dump(),
        "locks": (await store.locks(None, None, None, None)).model_dump(),
        "events": (await store.events(0, 100_000)).model_dump(),
        "threads": [(await store.thread(None, t, 500)).model_dump() for t in threads],
        "board": [
            (await read(store, None, s, since=0, limit=500, include_superseded=True)).model_dump() for s in scopes
        ],
        "inboxes": [(await store.inbox(a, 500)).model_dump() for a in names["agents"]],
    }


@asynccontextmanager
async def refused(store: Store, error: type[TeamroomError], *words: str) -> AsyncIterator[pytest.ExceptionInfo]:
    """The block must raise ``error`` (its text holding ``words``) and leave the store exactly as it was,
    the audit log included."""
    before = await view(store)
    with pytest.raises(error) as caught:
        yield caught
    assert str(caught.value).startswith(f"{error.code}: ")
    for word in words:
        assert word in str(caught.value)
    assert await view(store) == before, "a refused call changed the store"

"""Agents and liveness by the store's clock, the names a store knows, and the audit log in commit
order (SPEC §2, §3 Agents, §6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.contract.support import claim, events, lease, post, read, register, send

pytestmark = pytest.mark.asyncio


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _agents(store, **filters) -> dict:
    options = {"role": None, "capability": None, "include_offline": False, **filters}
    listed = await store.agents(None, options["role"], options["capability"], options["include_offline"])
    return {entry.name: entry for entry in listed.agents}


async def test_register_creates_the_record_and_calling_again_updates_only_what_it_gives(store):
    async with store:
        first = await store.register("a", "builder", ["py", "sql"], "builds")
        again = await store.register("a", "reviewer", None, None)
        listed = await _agents(store)
    assert first.model_dump() == {
        "name": "a",
        "role": "builder",
        "capabilities": ["py", "sql"],
        "description": "builds",
    }
    assert again.model_dump() == {
        "name": "a",
        "role": "reviewer",
        "capabilities": ["py", "sql"],
        "description": "builds",
    }
    assert (listed["a"].role, listed["a"].capabilities, listed["a"].description) == (
        "reviewer", ["py", "sql"], "builds",
    )  # fmt: skip


async def test_a_name_that_calls_any_verb_is_known_from_then_on_and_a_read_for_nobody_names_nobody(store):
    async with store:
        await lease(store, "poller")
        await claim(store, "claimer", ["x.py"])
        await post(store, "poster", "hi")
        await read(store, "reader", "main")
        await store.locks("looker", None, None, None)
        await store.heartbeat("beater", None, None, None)
        await read(store, None, "main")
        await store.locks(None, None, None, None)
        await store.agents(None, None, None, True)
        await store.inbox("inboxed", 10)
        names = await store.known_names()
        seen = [e.subject for e in await events(store, "agent_seen")]
    assert names["agents"] == ["beater", "claimer", "looker", "poller", "poster", "reader"]
    assert seen == ["poller", "claimer", "poster", "reader", "looker", "beater"]


async def test_liveness_is_live_for_two_minutes_then_stale_then_offline_after_fifteen_by_the_stores_clock(store, clock):
    async with store:
        await register(store, "a")
        await register(store, "b")
        live = (await _agents(store))["b"]
        clock.advance(2 * 60)
        await store.heartbeat("a", None, None, None)
        stale = (await _agents(store))["b"]
        clock.advance(13 * 60)
        listed = await _agents(store)
        everyone = await _agents(store, include_offline=True)
    assert (live.liveness, stale.liveness) == ("live", "stale") and live.last_seen == stale.last_seen
    assert list(listed) == ["a"] and {n: e.liveness for n, e in everyone.items()} == {"a": "stale", "b": "offline"}


async def test_agents_shows_status_task_note_the_locks_held_and_unread_and_leased_apart(store, clock):
    async with store:
        await register(store, "a", "lead")
        await register(store, "b", "builder", ["py"])
        await store.heartbeat("b", "working", "auth", "halfway")
        await claim(store, "b", ["src/**", "deploy:prod"])
        for body in ("x", "y", "z"):
            await send(store, "a", "b", body)
        await lease(store, "b", limit=1, lease_seconds=30)
        b = (await _agents(store))["b"]
        by_role = await _agents(store, role="builder")
        by_capability = await _agents(store, capability="py")
        clock.advance(30)  # a lapsed lease is unread again
        later = (await _agents(store))["b"]
    assert (b.status, b.task, b.note, b.locks) == ("working", "auth", "halfway", ["deploy:prod", "src/**"])
    assert (b.unread, b.leased, later.unread, later.leased) == (2, 1, 3, 0)
    assert list(by_role) == list(by_capability) == ["b"]


async def test_heartbeat_tells_the_time_and_logs_a_status_only_when_it_changed(store, clock):
    async with store:
        first = await store.heartbeat("a", "working", "auth", None)
        await store.heartbeat("a", "working", "auth", None)
        await store.heartbeat("a", None, None, None)
        await store.heartbeat("a", "blocked", None, "waiting for review")
        statuses = [(e.data["status"], e.data["note"]) for e in await events(store, "status")]
        [a] = (await _agents(store)).values()
    assert first.server_time == _iso(clock.now_ms()) and (first.unread, first.locks) == (0, [])
    assert statuses == [("working", None), ("blocked", "waiting for review")]
    assert (a.status, a.task, a.note) == ("blocked", "auth", "waiting for review")


# --- the audit log ------------------------------------------------------------------------------


async def test_every_state_change_of_a_delivery_is_in_the_log_in_the_order_it_happened(store, clock):
    async with store:
        await register(store, "a")
        await register(store, "b")
        sent = await send(store, "a", "b")
        receipt = (await lease(store, "b")).messages[0].receipt
        await store.nack("b", receipt, "flaky", 0)
        clock.advance(1)
        receipt = (await lease(store, "b")).messages[0].receipt
        await store.ack("b", [receipt])
        log = await events(store)
    trail = [(e.agent, e.kind) for e in log if e.subject == sent.message_id]
    assert trail == [("a", "send"), ("b", "lease"), ("b", "nack"), ("b", "lease"), ("b", "ack")]
    assert [e.id for e in log] == sorted({e.id for e in log}), "ids grow in commit order"
    assert [e.at for e in log] == sorted(e.at for e in log) and log[-1].at == _iso(clock.now_ms())


async def test_events_page_forward_from_an_id_or_give_the_newest_and_filter_by_agent_and_kind(store):
    async with store:
        await register(store, "a")
        await register(store, "b")
        for body in ("1", "2", "3"):
            await send(store, "a", "b", body)
        everything = await events(store)
        pages, after = [], 0
        while page := (await store.events(after, 2)).events:
            pages.append(page)
            after = page[-1].id
        newest = (await store.events(-1, 2)).events
        sends = (await store.events(-1, 100, "a", ["send"])).events
        of_b = (await store.events(0, 100, "b")).events
        none = (await store.events(everything[-1].id, 100)).events
    assert [e for page in pages for e in page] == everything and all(len(p) <= 2 for p in pages)
    assert newest == everything[-2:]
    assert [(e.agent, e.kind, e.data["to"]) for e in sends] == [("a", "send", ["b"])] * 3
    assert {e.agent for e in of_b} == {"b"} and none == []


async def test_recent_threads_are_the_threads_with_the_newest_messages_first(store):
    async with store:
        await register(store, "a")
        await register(store, "b")
        first = await send(store, "a", "b", "one")
        second = await send(store, "a", "b", "two")
        await send(store, "b", "a", "back in the first", thread_id=first.thread_id)
        threads = await store.recent_threads(10)
        one = await store.recent_threads(1)
    assert threads == [first.thread_id, second.thread_id] and one == [first.thread_id]

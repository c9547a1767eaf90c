"""Waiting for a change: a commit of any client wakes every waiter, a read wakes none, and a token
taken before a commit never misses it (what poll and claim_lock with wait_seconds stand on).

These are the only contract tests that wait in real time: a wait's timeout is wall-clock time.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.contract.support import claim, read, register, send

pytestmark = pytest.mark.asyncio

LONG = 30.0  # a wait that must end on a commit, far sooner than this
WOKEN_WITHIN = 5.0


async def test_a_commit_between_taking_the_token_and_waiting_is_not_missed(store):
    async with store:
        await register(store, "a")
        token = store.change_token()
        await register(store, "b")
        started = time.monotonic()
        async with asyncio.timeout(WOKEN_WITHIN):
            woke = await store.wait_for_change(token, LONG)
        changed = store.change_token() != token
    assert woke and changed and time.monotonic() - started < WOKEN_WITHIN


async def test_a_waiter_wakes_when_another_client_commits(store, make_store):
    async with store, make_store() as other:
        await register(store, "waiter")
        await register(other, "sender")
        token = store.change_token()
        waiter = asyncio.create_task(store.wait_for_change(token, LONG))
        done, _ = await asyncio.wait({waiter}, timeout=0.2)
        assert not done, "nothing was committed: the waiter keeps waiting"
        started = time.monotonic()
        await send(other, "sender", "waiter", "wake up")
        async with asyncio.timeout(WOKEN_WITHIN):
            woke = await waiter
    assert woke and time.monotonic() - started < WOKEN_WITHIN


async def test_every_waiter_of_a_client_wakes_on_one_commit(store, make_store):
    async with store, make_store() as other:
        await register(store, "a")
        token = store.change_token()
        waiters = [asyncio.create_task(store.wait_for_change(token, LONG)) for _ in range(5)]
        await register(other, "b")
        async with asyncio.timeout(WOKEN_WITHIN):
            woke = await asyncio.gather(*waiters)
    assert woke == [True] * 5


async def test_a_wait_that_sees_no_commit_ends_at_its_timeout_and_says_so(store):
    async with store:
        await register(store, "a")
        token = store.change_token()
        started = time.monotonic()
        woke = await store.wait_for_change(token, 0.1)
    assert woke is False and time.monotonic() - started >= 0.1


async def test_reads_of_any_client_wake_no_waiter(store, make_store):
    """A poll takes the token, reads when its next delivery is due and waits: a read that woke it would spin."""
    async with store, make_store() as other:
        await register(store, "a")
        await claim(store, "a", ["x.py"])
        await send(store, "a", "a", "to self")
        token = store.change_token()
        for reader in (store, other):
            await reader.next_ready_in("b", None, None)
            await reader.lock_clear_in("b", ["x.py"], "exclusive")
            await reader.inbox("a", 10)
            await reader.events(0, 100)
            await reader.locks(None, None, None, None)
            await reader.agents(None, None, None, True)
            await read(reader, None, "main", since=0)
            await reader.known_names()
        woke = await store.wait_for_change(token, 0.2)
        unchanged = store.change_token() == token
    assert woke is False and unchanged

"""Locks: all-or-nothing claims, modes, fencing tokens that only grow, renewals that keep them,
takeovers of expired locks, releases that are all or nothing (SPEC §3 Locks, §6)."""

from __future__ import annotations

import asyncio

import pytest

from teamroom.errors import NotFound, NotOwner
from tests.contract.support import claim, events, holders, refused, view

pytestmark = pytest.mark.asyncio


async def _tokens(store, agent: str) -> dict[str, int]:
    return {lock.resource: lock.token for lock in (await store.locks(None, None, agent, None)).locks}


# --- claiming -------------------------------------------------------------------------------


async def test_a_claim_grants_every_resource_each_with_its_own_token_and_later_grants_get_greater_ones(store):
    async with store:
        first = await claim(store, "a", ["src/app.py", "docs/**", "deploy:prod"], reason="release")
        later = await claim(store, "b", ["lib/x.py"])
        listed = (await store.locks(None, None, None, None)).locks
    assert first.granted and first.conflicts == [] and first.more_conflicts == 0
    assert [g.resource for g in first.locks] == ["src/app.py", "docs/**", "deploy:prod"]
    assert {(g.mode, g.renewed, g.took_over_from) for g in first.locks} == {("exclusive", False, None)}
    tokens = [g.token for g in first.locks]
    assert tokens == sorted(tokens) and len(set(tokens)) == 3 and later.locks[0].token > max(tokens)
    assert {(lock.resource, lock.holder, lock.token, lock.reason) for lock in listed} == {
        *((g.resource, "a", g.token, "release") for g in first.locks),
        ("lib/x.py", "b", later.locks[0].token, None),
    }


async def test_exclusive_is_refused_by_any_overlap_and_shared_only_by_an_exclusive_one(store):
    async with store:
        await claim(store, "a", ["src/auth/**"], reason="refactoring auth")
        refusals = [await claim(store, "b", ["src/*/login.py"], mode) for mode in ("exclusive", "shared")]
        elsewhere = await claim(store, "b", ["src/billing/**"])
        await claim(store, "c", ["schema.sql"], "shared")
        shared_too = await claim(store, "d", ["schema.sql"], "shared")
        exclusive = await claim(store, "e", ["*.sql"])
    for refusal in refusals:
        assert not refusal.granted and refusal.locks == []
        [conflict] = refusal.conflicts
        assert (conflict.resource, conflict.held_by, conflict.mode, conflict.reason) == (
            "src/auth/**", "a", "exclusive", "refactoring auth",
        )  # fmt: skip
        assert (conflict.requested, conflict.example) == ("src/*/login.py", "src/auth/login.py")
    assert elsewhere.granted and shared_too.granted
    assert sorted(c.held_by for c in exclusive.conflicts) == ["c", "d"]


async def test_a_claim_with_one_conflict_grants_nothing_and_leaves_the_locks_as_they_were(store):
    async with store:
        await claim(store, "a", ["b.py"])
        await claim(store, "x", ["a.py"])  # x is known: its refused claims below write nothing else
        before = await view(store)
        refused_claim = await claim(store, "x", ["c.py", "b.py", "d.py"])
        after = await view(store)
        free = await claim(store, "y", ["c.py", "d.py"])
    assert not refused_claim.granted and [c.requested for c in refused_claim.conflicts] == ["b.py"]
    assert after["locks"] == before["locks"] and after["events"] == before["events"]
    assert free.granted


async def test_a_callers_own_locks_never_conflict_with_its_claims(store):
    async with store:
        await claim(store, "a", ["src/**"])
        inner = await claim(store, "a", ["src/app.py"], "shared")
        held = await _tokens(store, "a")
    assert inner.granted and set(held) == {"src/**", "src/app.py"}


async def test_claiming_what_you_hold_renews_it_from_now_and_keeps_its_token(store, clock):
    async with store:
        [first] = (await claim(store, "a", ["x.py"], ttl=60, reason="first")).locks
        clock.advance(50)
        [again] = (await claim(store, "a", ["x.py"], ttl=60)).locks
        clock.advance(50)  # 100 s after the first claim, 50 after the renewal
        blocked = await claim(store, "b", ["x.py"])
        [listed] = (await store.locks(None, "x.py", None, None)).locks
        clock.advance(10)
        free = await claim(store, "b", ["x.py"])
    assert (again.token, again.renewed) == (first.token, True) and again.expires_at > first.expires_at
    assert not blocked.granted and (listed.holder, listed.token, listed.reason) == ("a", first.token, "first")
    assert free.granted and free.locks[0].took_over_from == "a"


async def test_an_expired_lock_is_taken_over_with_a_greater_token_and_the_takeover_is_logged(store, clock):
    async with store:
        [old] = (await claim(store, "a", ["src/auth/**"], ttl=30)).locks
        clock.advance(30)
        listed = (await store.locks(None, None, None, None)).locks
        cleared = await store.lock_clear_in("b", ["src/auth/login.py"], "exclusive")
        [new] = (await claim(store, "b", ["src/auth/login.py"])).locks
        [takeover] = await events(store, "lock_takeover")
        async with refused(store, NotFound, "you hold no locks"):
            await store.release_lock("a", ["src/auth/**"])
    assert listed == [] and cleared == 0
    assert new.token > old.token and new.took_over_from == "a"
    assert (takeover.agent, takeover.subject) == ("b", "src/auth/**")
    assert (takeover.data["previous_holder"], takeover.data["previous_token"]) == ("a", old.token)


async def test_reclaiming_your_own_expired_lock_is_a_new_grant_with_a_new_token(store, clock):
    async with store:
        [old] = (await claim(store, "a", ["x.py"], ttl=30)).locks
        clock.advance(31)
        [new] = (await claim(store, "a", ["x.py"])).locks
    assert new.token > old.token and not new.renewed


async def test_fencing_tokens_only_grow_through_releases_mode_changes_and_takeovers(store, clock):
    async with store:
        seen = []
        for step in range(3):
            seen += [g.token for g in (await claim(store, "a", ["x.py", "y.py"], ttl=10)).locks]
            seen += [g.token for g in (await claim(store, "a", ["x.py"], "shared")).locks]  # another mode: a new grant
            await store.release_lock("a", None)
            seen += [g.token for g in (await claim(store, f"b{step}", ["y.py"], ttl=10)).locks]
            clock.advance(10)
            seen += [g.token for g in (await claim(store, "c", ["y.py"], ttl=10)).locks]  # a takeover
            clock.advance(10)
    assert seen == sorted(seen) and len(set(seen)) == len(seen) == 15


async def test_a_refusal_lists_fifty_conflicts_and_counts_the_rest(store):
    async with store:
        await claim(store, "a", [f"src/f{i}.py" for i in range(60)])
        refusal = await claim(store, "b", ["src/**"])
    assert not refusal.granted and len(refusal.conflicts) == 50 and refusal.more_conflicts == 10


async def test_concurrent_claims_through_two_clients_grant_each_resource_to_one_holder(store, make_store):
    async with store, make_store() as other:
        files = [f"src/m{i}.py" for i in range(6)]
        attempts = [(s, f"p{i}", file) for i, s in enumerate((store, other, store, other)) for file in files]
        results = await asyncio.gather(*(claim(s, agent, [file]) for s, agent, file in attempts))
        wins = [
            (file, agent, r.locks[0].token) for (_, agent, file), r in zip(attempts, results, strict=True) if r.granted
        ]
        held = {(lock.resource, lock.holder, lock.token) for lock in (await store.locks(None, None, None, None)).locks}
    assert sorted(file for file, _, _ in wins) == files, "one winner each"
    assert held == set(wins) and len({token for _, _, token in wins}) == len(files)


# --- waiting for a claim ------------------------------------------------------------------------


async def test_lock_clear_in_is_the_time_until_the_first_blocking_lock_expires_and_reads_only(store, clock):
    async with store:
        free = await store.lock_clear_in("b", ["src/app.py"], "exclusive")
        await claim(store, "a", ["src/**"], "shared", ttl=100)
        await claim(store, "c", ["src/app.py"], "shared", ttl=40)
        await claim(store, "d", ["docs/**"], ttl=70)
        before = await view(store)
        exclusive = await store.lock_clear_in("b", ["src/app.py"], "exclusive")
        shared = await store.lock_clear_in("b", ["src/app.py", "docs/x.md"], "shared")
        own = await store.lock_clear_in("a", ["src/lib.py"], "exclusive")
        assert await view(store) == before
    assert (free, exclusive, shared, own) == (0, 40, 70, 0)


# --- renewing -----------------------------------------------------------------------------------


async def test_heartbeat_renews_every_live_lock_by_its_own_ttl_keeping_tokens(store, clock):
    async with store:
        await claim(store, "a", ["short.py"], ttl=60)
        await claim(store, "a", ["long.py"], ttl=600)
        tokens = await _tokens(store, "a")
        clock.advance(50)
        beat = await store.heartbeat("a", None, None, None)
        clock.advance(50)  # past short.py's first expiry, inside its renewal
        renewed = await _tokens(store, "a")
        clock.advance(20)  # 70 s after the heartbeat
        later = await _tokens(store, "a")
        agents = {e.name: e.locks for e in (await store.agents(None, None, None, True)).agents}
    assert beat.locks == ["long.py", "short.py"] and beat.leases_renewed == 2
    assert renewed == tokens and later == {"long.py": tokens["long.py"]} and agents["a"] == ["long.py"]


# --- releasing ----------------------------------------------------------------------------------


async def test_release_without_resources_releases_everything_the_caller_holds(store):
    async with store:
        await claim(store, "a", ["x.py", "lib/**"])
        await claim(store, "b", ["y.py"])
        released = await store.release_lock("a", None)
        nothing = await store.release_lock("a", None)
        left = await holders(store)
        log = [(e.agent, e.subject) for e in await events(store, "lock_release")]
    assert sorted(released.released) == ["lib/**", "x.py"] and nothing.released == []
    assert left == {"y.py": "b"} and sorted(log) == [("a", "lib/**"), ("a", "x.py")]


async def test_a_release_naming_a_lock_of_another_holder_or_of_nobody_releases_nothing(store):
    async with store:
        await claim(store, "a", ["mine.py", "also-mine.py"])
        await claim(store, "b", ["theirs.py"])
        async with refused(store, NotOwner, "'b'", "nothing was released"):
            await store.release_lock("a", ["mine.py", "theirs.py"])
        async with refused(store, NotFound, "'nobody.py'", "you hold: also-mine.py, mine.py"):
            await store.release_lock("a", ["mine.py", "nobody.py"])
        released = await store.release_lock("a", ["mine.py"])
    assert released.released == ["mine.py"]


async def test_an_expired_lock_nobody_takes_over_is_dropped_within_the_hour_and_logged(store, clock):
    async with store:
        [lock] = (await claim(store, "a", ["x.py"], ttl=60)).locks
        clock.advance(60 + 3600)
        await store.heartbeat("b", None, None, None)  # any write does the housekeeping
        [dropped] = await events(store, "lock_expired")
        async with refused(store, NotFound, "you hold no locks"):
            await store.release_lock("a", ["x.py"])
    assert (dropped.subject, dropped.data["holder"], dropped.data["token"]) == ("x.py", "a", lock.token)


# --- listing ------------------------------------------------------------------------------------


async def test_locks_lists_the_live_locks_overlapping_a_resource_by_holder_with_a_limit(store, clock):
    async with store:
        await claim(store, "a", ["src/auth/**", "deploy:prod"], reason="r")
        await claim(store, "b", ["src/billing/pay.py", "README.md"], "shared")
        await claim(store, "c", ["src/auth/gone.py"], ttl=1)
        clock.advance(1)
        login = (await store.locks(None, "src/*/login.py", None, None)).locks
        under_src = (await store.locks(None, "src/**", None, None)).locks
        of_b = (await store.locks(None, None, "b", None)).locks
        page = await store.locks("c", None, None, 1)
        everything = (await store.locks(None, None, None, None)).locks
    assert [(lock.resource, lock.holder, lock.mode, lock.reason) for lock in login] == [
        ("src/auth/**", "a", "exclusive", "r")
    ]
    assert {lock.resource for lock in under_src} == {"src/auth/**", "src/billing/pay.py"}
    assert [(lock.resource, lock.mode) for lock in of_b] == [("README.md", "shared"), ("src/billing/pay.py", "shared")]
    assert (len(page.locks), page.more) == (1, 3)
    assert len(everything) == 4 and all(lock.acquired_at < lock.expires_at for lock in everything)

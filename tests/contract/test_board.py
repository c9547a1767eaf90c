"""The board: append-only entries in scopes owned by their opener, supersedes, and each agent's own
unread cursor (SPEC §3 Board)."""

from __future__ import annotations

import pytest

from teamroom.errors import Conflict, Forbidden, Invalid, NotFound, NotOwner
from tests.contract.support import bodies, events, post, read, refused, view

pytestmark = pytest.mark.asyncio


async def test_the_first_post_opens_a_scope_its_author_owns_and_seq_grows_in_each_scope_on_its_own(store):
    async with store:
        posts = [
            await post(store, author, f"{scope} {n}", scope=scope)
            for n in range(3)
            for author, scope in (("lead", "a"), ("audit", "b"))
        ]
        by_other = await post(store, "audit", "in a", scope="a")
        default = await post(store, "impl", "no scope given")
        opened_log = [(e.agent, e.subject) for e in await events(store, "scope_opened")]
        scopes = await store.board_scopes()
        names = await store.known_names()
    assert [(p.scope, p.seq, p.owner) for p in posts] == [
        ("a", 1, "lead"), ("b", 1, "audit"), ("a", 2, "lead"), ("b", 2, "audit"), ("a", 3, "lead"), ("b", 3, "audit"),
    ]  # fmt: skip
    assert (by_other.seq, by_other.owner) == (4, "lead")
    assert (default.scope, default.seq, default.owner) == ("main", 1, "impl")
    assert len({p.id for p in [*posts, by_other, default]}) == 8
    assert opened_log == [("lead", "a"), ("audit", "b"), ("impl", "main")]
    assert scopes == ["a", "b", "main"] and names["scopes"] == ["a", "b", "main"]


async def test_only_the_owner_of_a_scope_posts_decisions_and_a_refused_post_takes_no_seq(store):
    async with store:
        await post(store, "lead", "plan", scope="wf", kind="intent")
        await post(store, "impl", "hello", scope="wf")
        async with refused(store, Forbidden, "'lead'"):
            await post(store, "impl", "we use JWT", scope="wf", kind="decision")
        decided = await post(store, "lead", "we use JWT", scope="wf", kind="decision")
        own_scope = await post(store, "impl", "mine to decide", scope="impl-notes", kind="decision")
        board = await read(store, None, "wf", since=0)
    assert decided.seq == 3 and own_scope.owner == "impl"
    assert [(e.author, e.kind) for e in board.entries] == [
        ("lead", "intent"), ("impl", "finding"), ("lead", "decision"),
    ]  # fmt: skip


async def test_an_entry_keeps_what_was_posted(store):
    async with store:
        posted = await post(
            store,
            "audit",
            "sql injection in search",
            scope="wf",
            kind="finding",
            title="SQLi",
            tags=["sec", "db"],
            refs=["src/search.py", "m12"],
        )
        [entry] = (await read(store, "lead", "wf")).entries
    assert (entry.id, entry.seq, entry.scope, entry.author, entry.kind, entry.title, entry.body) == (
        posted.id, 1, "wf", "audit", "finding", "SQLi", "sql injection in search",
    )  # fmt: skip
    assert (entry.tags, entry.refs, entry.supersedes, entry.superseded_by) == (
        ["sec", "db"], ["src/search.py", "m12"], None, None,
    )  # fmt: skip


# --- unread cursors -----------------------------------------------------------------------------


async def test_an_unread_read_returns_what_the_reader_has_not_read_skipping_its_own_and_moves_its_cursor(store):
    async with store:
        await post(store, "lead", "plan", scope="wf", kind="intent")
        await post(store, "audit", "a1", scope="wf")
        first = await read(store, "impl", "wf")
        again = await read(store, "impl", "wf")
        await post(store, "impl", "i1", scope="wf")
        await post(store, "audit", "a2", scope="wf")
        later = await read(store, "impl", "wf")
        lead = await read(store, "lead", "wf")
    assert (bodies(first), first.cursor, first.unread, first.owner) == (["plan", "a1"], 2, 0, "lead")
    assert (again.entries, again.cursor, again.unread) == ([], 2, 0)
    assert (bodies(later), later.cursor, later.unread) == (["a2"], 4, 0)
    assert bodies(lead) == ["a1", "i1", "a2"], "each reader has its own cursor"


async def test_a_read_since_a_seq_reads_after_it_and_moves_no_cursor(store):
    async with store:
        for body in ("one", "two", "three"):
            await post(store, "lead", body, scope="wf")
        page = await read(store, "impl", "wf", since=1, limit=1)
        rest = await read(store, "impl", "wf", since=page.cursor)
        past_the_end = await read(store, "impl", "wf", since=3)
        unread = await read(store, "impl", "wf")
    assert (bodies(page), page.cursor, page.unread) == (["two"], 2, 3)
    assert (bodies(rest), rest.cursor) == (["three"], 3)
    assert (past_the_end.entries, past_the_end.cursor) == ([], 3)
    assert bodies(unread) == ["one", "two", "three"]


async def test_a_limited_read_leaves_the_rest_unread(store):
    async with store:
        for n in range(5):
            await post(store, "lead", str(n), scope="wf")
        first = await read(store, "impl", "wf", limit=2)
        second = await read(store, "impl", "wf", limit=2)
    assert (bodies(first), first.cursor, first.unread) == (["0", "1"], 2, 3)
    assert (bodies(second), second.cursor, second.unread) == (["2", "3"], 4, 1)


async def test_a_filtered_read_marks_only_what_it_returned(store):
    async with store:
        await post(store, "lead", "plan", scope="wf", kind="intent", tags=["plan"])
        await post(store, "audit", "sql injection", scope="wf", tags=["sec", "db"])
        await post(store, "impl", "which db?", scope="wf", kind="question", tags=["db"])
        await post(store, "lead", "decided", scope="wf", kind="decision")
        by_kind = await read(store, "x", "wf", since=0, kinds=["finding", "question"])
        by_author = await read(store, "x", "wf", since=0, author="audit")
        by_tags = await read(store, "x", "wf", since=0, author="impl", tags=["db", "plan"])
        decisions = await read(store, "impl", "wf", kinds=["decision"])
        beat = await store.heartbeat("impl", None, None, None)
        rest = await read(store, "impl", "wf")
    assert (bodies(by_kind), bodies(by_author), bodies(by_tags)) == (
        ["sql injection", "which db?"], ["sql injection"], ["which db?"],
    )  # fmt: skip
    assert (bodies(decisions), decisions.cursor, decisions.unread) == (["decided"], 0, 2)
    assert beat.board_unread == {"wf": 2}
    assert (bodies(rest), rest.cursor, rest.unread) == (["plan", "sql injection"], 4, 0)


async def test_cursors_are_kept_in_the_store_for_every_client(store, make_store):
    async with store:
        for body in ("one", "two"):
            await post(store, "lead", body, scope="wf")
        await read(store, "impl", "wf")
        await post(store, "lead", "three", scope="wf")
    async with make_store() as restarted:
        after = await read(restarted, "impl", "wf")
    assert bodies(after) == ["three"]


async def test_heartbeat_counts_unread_entries_in_the_scopes_an_agent_posted_to_or_read(store):
    async with store:
        await post(store, "lead", "plan", scope="wf")
        await post(store, "lead", "not followed", scope="elsewhere")
        empty = await read(store, "impl", "later")  # reading a scope nobody opened yet follows it
        await read(store, "impl", "wf")
        await post(store, "impl", "mine", scope="impl-notes")
        quiet = await store.heartbeat("impl", None, None, None)
        for scope in ("wf", "wf", "impl-notes", "later"):
            await post(store, "audit", "news", scope=scope)
        busy = await store.heartbeat("impl", None, None, None)
        await read(store, "impl", "wf")
        after_read = await store.heartbeat("impl", None, None, None)
    assert (empty.entries, empty.owner, empty.cursor, empty.unread) == ([], None, 0, 0)
    assert quiet.board_unread == {}
    assert busy.board_unread == {"impl-notes": 1, "later": 1, "wf": 2}
    assert after_read.board_unread == {"impl-notes": 1, "later": 1}


async def test_a_read_without_a_reader_sees_the_board_and_moves_nothing_and_names_nobody(store):
    async with store:
        await post(store, "lead", "plan", scope="wf", kind="intent")
        await post(store, "audit", "finding", scope="wf")
        before = await view(store)
        anonymous = await read(store, None, "wf", since=0)
        assert await view(store) == before
        for_impl = await read(store, "impl", "wf")
    assert (bodies(anonymous), anonymous.cursor, anonymous.unread, anonymous.owner) == (
        ["plan", "finding"], 2, None, "lead",
    )  # fmt: skip
    assert bodies(for_impl) == ["plan", "finding"]


# --- supersedes: the board is append-only -------------------------------------------------------


async def test_a_superseded_entry_is_kept_but_hidden_unless_asked_for(store):
    async with store:
        old = await post(store, "audit", "race in login", scope="wf", kind="question", tags=["sec"])
        before = (await read(store, None, "wf", since=0)).entries
        new = await post(store, "audit", "race in refresh, not login", supersedes=old.id)
        shown = await read(store, None, "wf", since=0)
        everything = await read(store, None, "wf", since=0, include_superseded=True)
        unread = await read(store, "lead", "wf")
    assert (new.scope, new.seq) == ("wf", 2), "the scope of the entry it replaces"
    assert bodies(shown) == ["race in refresh, not login"] and shown.entries[0].supersedes == old.id
    assert shown.entries[0].kind == "question", "the kind of the entry it replaces"
    [kept, replacement] = everything.entries
    assert kept == before[0].model_copy(update={"superseded_by": new.id}), "the old entry is unchanged"
    assert replacement.id == new.id and bodies(unread) == ["race in refresh, not login"]


async def test_only_the_author_supersedes_an_entry_and_only_once_in_its_own_scope(store):
    async with store:
        old = await post(store, "audit", "v1", scope="wf")
        async with refused(store, NotOwner, "'audit'"):
            await post(store, "impl", "v2", supersedes=old.id)
        new = await post(store, "audit", "v2", supersedes=old.id, kind="note")
        async with refused(store, Conflict, new.id):
            await post(store, "audit", "v2 again", supersedes=old.id)
        async with refused(store, Invalid, "'wf'"):
            await post(store, "audit", "v3", scope="other", supersedes=new.id)
        async with refused(store, NotFound):
            await post(store, "audit", "v3", supersedes="e999")
        async with refused(store, NotFound):
            await post(store, "audit", "v3", supersedes="m1")
        board = await read(store, None, "wf", since=0, include_superseded=True)
    assert [(e.body, e.kind) for e in board.entries] == [("v1", "finding"), ("v2", "note")]

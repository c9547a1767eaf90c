"""The findings board: scopes, ownership, append-only entries, read cursors (in-process)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from teamroom.store import SQLiteStore
from teamroom.tools import board as board_tools
from tests.conftest import ToolFailed, in_process

pytestmark = pytest.mark.anyio


def seqs(result) -> list[int]:
    return [e["seq"] for e in result["entries"]]


def bodies(result) -> list[str]:
    return [e["body"] for e in result["entries"]]


async def test_the_first_post_opens_a_scope_and_its_author_owns_it(db_path, clock):
    async with in_process(db_path, clock) as call:
        first = await call("post_finding", agent="lead", scope="auth-review", kind="intent", body="plan")
        second = await call("post_finding", agent="audit", scope="auth-review", body="refresh skips expiry")
        other = await call("post_finding", agent="audit", body="in main")
        events = await call.client.read_resource("teamroom://events")
    assert first == {"id": first["id"], "seq": 1, "scope": "auth-review", "owner": "lead"}
    assert (second["seq"], second["owner"]) == (2, "lead")
    assert (other["scope"], other["seq"], other["owner"]) == ("main", 1, "audit")
    opened = [e for e in json.loads(events.contents[0].text)["events"] if e["kind"] == "scope_opened"]
    assert [(e["agent"], e["subject"]) for e in opened] == [("lead", "auth-review"), ("audit", "main")]


async def test_only_the_owner_of_a_scope_posts_decisions(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("post_finding", agent="lead", scope="wf", kind="intent", body="plan")
        with pytest.raises(ToolFailed) as refused:
            await call("post_finding", agent="impl", scope="wf", kind="decision", body="we use JWT")
        decided = await call("post_finding", agent="lead", scope="wf", kind="decision", body="we use JWT")
        board = await call("read_board", agent="lead", scope="wf", since=0)
    assert refused.value.code == "forbidden"
    assert "'lead'" in refused.value.text
    assert decided["seq"] == 2  # the refused post took no seq
    assert [(e["author"], e["kind"]) for e in board["entries"]] == [("lead", "intent"), ("lead", "decision")]


async def test_read_board_returns_only_what_the_reader_has_not_read_and_moves_its_cursor(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("post_finding", agent="lead", scope="wf", kind="intent", body="plan")
        await call("post_finding", agent="audit", scope="wf", body="a1")
        first = await call("read_board", agent="impl", scope="wf")
        again = await call("read_board", agent="impl", scope="wf")
        await call("post_finding", agent="impl", scope="wf", body="i1")
        await call("post_finding", agent="audit", scope="wf", body="a2")
        later = await call("read_board", agent="impl", scope="wf")
    assert (bodies(first), first["cursor"], first["unread"]) == (["plan", "a1"], 2, 0)
    assert (again["entries"], again["cursor"]) == ([], 2)
    # Its own entry i1 does not come back as unread; the cursor passes over it.
    assert (bodies(later), later["cursor"], later["unread"]) == (["a2"], 4, 0)


async def test_the_read_cursor_survives_a_server_restart(db_path, clock):
    async with in_process(db_path, clock) as call:
        for body in ("one", "two"):
            await call("post_finding", agent="lead", scope="wf", body=body)
        await call("read_board", agent="impl", scope="wf")
        await call("post_finding", agent="lead", scope="wf", body="three")
    async with in_process(db_path, clock) as call:
        after_restart = await call("read_board", agent="impl", scope="wf")
    assert bodies(after_restart) == ["three"]


async def test_read_board_with_since_reads_after_that_seq_and_moves_nothing(db_path, clock):
    async with in_process(db_path, clock) as call:
        for body in ("one", "two", "three"):
            await call("post_finding", agent="lead", scope="wf", body=body)
        page = await call("read_board", agent="impl", scope="wf", since=1, limit=1)
        rest = await call("read_board", agent="impl", scope="wf", since=page["cursor"])
        unread = await call("read_board", agent="impl", scope="wf")
    assert (bodies(page), page["cursor"], page["unread"]) == (["two"], 2, 3)
    assert (bodies(rest), rest["cursor"]) == (["three"], 3)
    assert bodies(unread) == ["one", "two", "three"]


async def test_seq_grows_within_each_scope_on_its_own(db_path, clock):
    async with in_process(db_path, clock) as call:
        posts = [
            await call("post_finding", agent="lead", scope=scope, body=f"{scope} {n}")
            for n in range(3)
            for scope in ("a", "b")
        ]
    assert [(p["scope"], p["seq"]) for p in posts] == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    assert len({p["id"] for p in posts}) == 6


async def test_a_superseded_entry_is_hidden_unless_asked_for(db_path, clock):
    async with in_process(db_path, clock) as call:
        old = await call("post_finding", agent="audit", scope="wf", body="race in login", tags=["sec"])
        new = await call("post_finding", agent="audit", body="race in refresh, not login", supersedes=old["id"])
        shown = await call("read_board", agent="lead", scope="wf", since=0)
        everything = await call("read_board", agent="lead", scope="wf", since=0, include_superseded=True)
        unread = await call("read_board", agent="lead", scope="wf")
    assert new["scope"] == "wf"  # the scope of the entry it replaces
    assert bodies(shown) == ["race in refresh, not login"]
    assert shown["entries"][0]["supersedes"] == old["id"]
    assert [(e["id"], e["superseded_by"]) for e in everything["entries"]] == [(old["id"], new["id"]), (new["id"], None)]
    assert bodies(unread) == ["race in refresh, not login"]


async def test_superseding_keeps_the_kind_of_the_replaced_entry_unless_given(db_path, clock):
    async with in_process(db_path, clock) as call:
        decision = await call("post_finding", agent="lead", scope="wf", kind="decision", body="use JWT")
        revised = await call("post_finding", agent="lead", body="use opaque tokens", supersedes=decision["id"])
        board = await call("read_board", agent="lead", scope="wf", since=0)
    assert revised["seq"] == 2
    assert [(e["kind"], e["body"]) for e in board["entries"]] == [("decision", "use opaque tokens")]


async def test_only_the_author_supersedes_an_entry_and_only_once(db_path, clock):
    async with in_process(db_path, clock) as call:
        old = await call("post_finding", agent="audit", scope="wf", body="v1")
        with pytest.raises(ToolFailed) as not_theirs:
            await call("post_finding", agent="impl", body="v2", supersedes=old["id"])
        new = await call("post_finding", agent="audit", body="v2", supersedes=old["id"])
        with pytest.raises(ToolFailed) as twice:
            await call("post_finding", agent="audit", body="v2 again", supersedes=old["id"])
        with pytest.raises(ToolFailed) as elsewhere:
            await call("post_finding", agent="audit", scope="other", body="v3", supersedes=new["id"])
        with pytest.raises(ToolFailed) as missing:
            await call("post_finding", agent="audit", body="v3", supersedes="e999")
        board = await call("read_board", agent="lead", scope="wf", since=0, include_superseded=True)
    assert not_theirs.value.code == "not_owner"
    assert twice.value.code == "conflict"
    assert new["id"] in twice.value.text  # says what to supersede instead
    assert (elsewhere.value.code, missing.value.code) == ("invalid", "not_found")
    assert bodies(board) == ["v1", "v2"]


async def test_read_board_filters_by_kind_author_and_tags(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("post_finding", agent="lead", scope="wf", kind="intent", body="plan", tags=["plan"])
        await call("post_finding", agent="audit", scope="wf", body="sql injection", tags=["sec", "db"])
        await call("post_finding", agent="impl", scope="wf", kind="question", body="which db?", tags=["db"])
        await call("post_finding", agent="audit", scope="wf", kind="note", body="ran the linter")
        by_kind = await call("read_board", agent="x", scope="wf", since=0, kinds=["finding", "question"])
        by_author = await call("read_board", agent="x", scope="wf", since=0, author="audit")
        by_tag = await call("read_board", agent="x", scope="wf", since=0, tags=["db"])
        combined = await call("read_board", agent="x", scope="wf", since=0, author="audit", tags=["db", "plan"])
    assert bodies(by_kind) == ["sql injection", "which db?"]
    assert bodies(by_author) == ["sql injection", "ran the linter"]
    assert bodies(by_tag) == ["sql injection", "which db?"]
    assert bodies(combined) == ["sql injection"]


async def test_a_filtered_read_marks_only_what_it_returned(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("post_finding", agent="lead", scope="wf", kind="intent", body="plan")
        await call("post_finding", agent="audit", scope="wf", body="finding")
        await call("post_finding", agent="lead", scope="wf", kind="decision", body="decided")
        decisions = await call("read_board", agent="impl", scope="wf", kinds=["decision"])
        beat = await call("heartbeat", agent="impl")
        rest = await call("read_board", agent="impl", scope="wf")
        none_left = await call("read_board", agent="impl", scope="wf")
    assert (bodies(decisions), decisions["unread"]) == (["decided"], 2)
    assert decisions["cursor"] == 0  # nothing before "decided" was read yet
    assert beat["board_unread"] == {"wf": 2}
    assert (bodies(rest), rest["cursor"], rest["unread"]) == (["plan", "finding"], 3, 0)
    assert none_left["entries"] == []


async def test_a_limited_read_leaves_the_rest_unread(db_path, clock):
    async with in_process(db_path, clock) as call:
        for n in range(5):
            await call("post_finding", agent="lead", scope="wf", body=str(n))
        first = await call("read_board", agent="impl", scope="wf", limit=2)
        second = await call("read_board", agent="impl", scope="wf", limit=2)
    assert (bodies(first), first["cursor"], first["unread"]) == (["0", "1"], 2, 3)
    assert (bodies(second), second["cursor"], second["unread"]) == (["2", "3"], 4, 1)


async def test_heartbeat_reports_unread_entries_in_the_scopes_an_agent_posted_to_or_read(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("post_finding", agent="lead", scope="wf", kind="intent", body="plan")
        await call("post_finding", agent="lead", scope="elsewhere", body="not followed by impl")
        await call("read_board", agent="impl", scope="wf")
        await call("post_finding", agent="impl", scope="impl-notes", body="mine")
        quiet = await call("heartbeat", agent="impl")
        await call("post_finding", agent="audit", scope="wf", body="a1")
        await call("post_finding", agent="audit", scope="wf", body="a2")
        await call("post_finding", agent="audit", scope="impl-notes", body="a3")
        busy = await call("heartbeat", agent="impl")
        await call("read_board", agent="impl", scope="wf")
        after_read = await call("heartbeat", agent="impl")
    assert quiet["board_unread"] == {}
    assert busy["board_unread"] == {"impl-notes": 1, "wf": 2}
    assert after_read["board_unread"] == {"impl-notes": 1}


async def test_reading_a_scope_nobody_posted_to_yet_follows_it(db_path, clock):
    async with in_process(db_path, clock) as call:
        empty = await call("read_board", agent="impl", scope="later")
        await call("post_finding", agent="lead", scope="later", body="now")
        beat = await call("heartbeat", agent="impl")
    assert (empty["entries"], empty["owner"], empty["cursor"], empty["unread"]) == ([], None, 0, 0)
    assert beat["board_unread"] == {"later": 1}


async def test_board_entries_are_append_only_in_the_store(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("post_finding", agent="lead", scope="wf", body="kept")
    conn = sqlite3.connect(db_path)
    try:
        for statement in ("UPDATE board_entries SET body = 'rewritten'", "DELETE FROM board_entries"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"scope": "a/b"}, "invalid"),
        ({"kind": "verdict"}, "invalid"),
        ({"body": "x" * (64 * 1024 + 1)}, "too_large"),
        ({"body": "   "}, "invalid"),
        ({"title": "t" * 201}, "invalid"),
        ({"tags": [f"t{n}" for n in range(33)]}, "invalid"),
        ({"supersedes": "m1"}, "not_found"),
        ({"agent": "not a name"}, "invalid"),
    ],
)
async def test_a_bad_post_is_refused_and_changes_nothing(db_path, clock, arguments, code):
    async with in_process(db_path, clock) as call:
        with pytest.raises(ToolFailed) as refused:
            await call("post_finding", **{"agent": "audit", "scope": "wf", "body": "b", **arguments})
        board = await call("read_board", agent="lead", scope="wf", since=0)
    assert refused.value.code == code
    assert (board["entries"], board["owner"]) == ([], None)


@pytest.mark.parametrize(
    "arguments",
    [{"since": -1}, {"limit": 0}, {"limit": 501}, {"kinds": ["verdict"]}, {"author": "no such/name"}, {"scope": ""}],
)
async def test_a_bad_read_is_invalid(db_path, clock, arguments):
    async with in_process(db_path, clock) as call:
        with pytest.raises(ToolFailed) as refused:
            await call("read_board", **{"agent": "lead", "scope": "wf", **arguments})
    assert refused.value.code == "invalid"


async def test_the_board_resource_and_a_reader_without_a_name_see_the_board_and_move_nothing(db_path, clock):
    async with in_process(db_path, clock) as call:
        await call("post_finding", agent="lead", scope="wf", kind="intent", body="plan")
        old = await call("post_finding", agent="audit", scope="wf", body="v1")
        await call("post_finding", agent="audit", body="v2", supersedes=old["id"])
        resource = json.loads(await call.resource("teamroom://board/wf"))
    store = SQLiteStore(db_path, clock=clock)
    await store.open()
    try:
        human = await board_tools.read_board(store, None, "wf")
    finally:
        await store.close()
    async with in_process(db_path, clock) as call:
        agents = await call("agents", agent="lead", include_offline=True)
    assert bodies(resource) == ["plan", "v2"]
    assert resource["owner"] == "lead"
    assert [e.body for e in human.entries] == ["plan", "v2"]
    assert (human.cursor, human.unread) == (3, None)
    assert {a["name"] for a in agents["agents"]} == {"lead", "audit"}  # the anonymous read named nobody

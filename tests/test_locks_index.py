"""Lock candidates are found by index: the narrowing never hides an overlap, and no statement scans."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from unittest.mock import patch

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from teamroom import paths
from teamroom.errors import Invalid, TeamroomError
from teamroom.paths import normalise, overlaps
from teamroom.store import ManualClock, SQLiteStore
from teamroom.store.rules import locks as lock_sql
from teamroom.store.sqlite import migrations, statements
from teamroom.store.tx import Tx
from teamroom.tools import agents
from teamroom.tools import locks as lock_tools
from tests.plans import full_scans, traced

NOW = 1_800_000_000_000

segments = st.sampled_from(["a", "b", "ab", "x.py", "y.md", "*", "*.py", "?", "[ab]", "**", "a*", "*b", "x.*"])
resources = st.lists(segments, min_size=1, max_size=4).map("/".join)


@contextmanager
def _store() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    for _, script in migrations():
        for statement in statements(script):
            conn.execute(statement)
    try:
        yield conn
    finally:
        conn.close()


def _normal(raw: str) -> str | None:
    try:
        return normalise(raw)
    except Invalid:
        return None


@settings(max_examples=150, deadline=None)
@given(st.lists(resources, min_size=1, max_size=25), resources)
def test_a_claim_conflicts_with_exactly_the_live_locks_it_overlaps(held: list[str], wanted: str) -> None:
    held = [r for r in dict.fromkeys(map(_normal, held)) if r is not None]
    wanted = _normal(wanted)
    if wanted is None:
        return
    with _store() as conn:
        tx = Tx(conn, NOW)
        for i, resource in enumerate(held):  # shared locks: they never conflict among themselves
            assert lock_sql.claim(tx, f"holder{i}", [resource], "shared", 60, None).granted
        expected = {r for r in held if overlaps(wanted, r)}

        result = lock_sql.claim(tx, "probe", [wanted], "exclusive", 60, None)
        found = {c.resource for c in result.conflicts}
        assert len(result.conflicts) + result.more_conflicts == len(expected)
        if not result.more_conflicts:
            assert found == expected
        assert result.granted is (not expected)

        listed = lock_sql.list_locks(tx, None, wanted, None, None)
        assert {lock.resource for lock in listed.locks} == expected | ({wanted} if result.granted else set())


async def _workload(store: SQLiteStore, clock: ManualClock) -> None:
    await lock_tools.claim_lock(store, "a", ["src/auth/**", "README.md", "deploy:prod"], reason="r")
    await lock_tools.claim_lock(store, "b", ["src/*/login.py"], mode="shared")
    await lock_tools.claim_lock(store, "b", ["**/*.md", "docs/a.md", "src/billing/"], ttl_seconds=30)
    await lock_tools.claim_lock(store, "b", ["README.md"], wait_seconds=0.01)
    await lock_tools.claim_lock(store, "a", ["src/auth/**"])  # a renewal
    await lock_tools.claim_lock(store, "c", ["src/auth/a.py", "docs/b.md", "src/x/y.py"])  # refused: several paths
    await lock_tools.claim_lock(store, "c", ["**/*.py"], mode="shared")  # a glob with no prefix
    await lock_tools.locks(store, "c", holder="b", limit=5)
    await lock_tools.locks(store, "c", resource="src/**")
    await lock_tools.locks(store, "c", resource="docs/a.md", holder="b")
    await lock_tools.locks(store, None, limit=10)
    await agents.heartbeat(store, "a")
    await agents.agents(store, "c")
    for bad in (["nobody.py"], ["src/auth/**"]):
        with pytest.raises(TeamroomError):
            await lock_tools.release_lock(store, "b", bad)
    await store._write(lock_sql.reassign, "a", "handoff:h1", ["deploy:prod"], None)
    await store._write(lock_sql.reassign, "handoff:h1", "c", None, None)
    clock.advance(60)  # b's locks lapse
    await lock_tools.claim_lock(store, "c", ["docs/**"])  # takes b's over
    await lock_tools.release_lock(store, "a", ["README.md"])
    await lock_tools.release_lock(store, "a")
    clock.advance(2 * 60 * 60)  # the sweep drops what nobody took over
    await agents.heartbeat(store, "c")


@pytest.mark.anyio
async def test_no_lock_statement_scans_the_locks_or_the_events_table(db_path) -> None:
    clock = ManualClock()
    store = SQLiteStore(db_path, clock=clock)
    await store.open()
    statements = await traced(store, lambda: _workload(store, clock))
    assert sum("locks" in sql for sql in statements) > 15, "the workload reached the locks"
    lock_statements = {sql for sql in statements if "locks" in sql}
    assert full_scans(db_path, lock_statements, lambda table: table in ("locks", "events")) == {}


@pytest.mark.anyio
async def test_lock_candidates_are_searched_by_prefix_and_end_never_by_expiry(db_path) -> None:
    """A search that went by the expiry index would read every live lock, and still be no SCAN."""
    clock = ManualClock()
    store = SQLiteStore(db_path, clock=clock)
    await store.open()
    statements = await traced(store, lambda: _workload(store, clock))
    candidates = {sql for sql in statements if "(+prefix, +rsuffix, +id) >" in sql or "+locks.prefix" in sql}
    assert len(candidates) > 8, "the workload ran the candidate searches"
    explain = sqlite3.connect(db_path)
    try:
        for sql in candidates:
            plan = [row[3] for row in explain.execute(f"EXPLAIN QUERY PLAN {sql}")]
            reads = [step for step in plan if " locks " in f"{step} "]
            assert reads and all("locks_kind_prefix" in step for step in reads), (sql, plan)
    finally:
        explain.close()


# Half the examples use the characters the narrowing treats apart: '[', '*' and '?' (escaped in a
# path as '[[]', '[*]', '[?]'), ':' and '~' (a first segment 'ab:c' or '~a' is written './ab:c'),
# a space (at the end written '[ ]') and classes in globs; all use '.', '-' and a non-ASCII letter.
CHARS = "ab.-é"
ODD_CHARS = CHARS * 4 + "*?[:~ "  # a special character one time in four
GLOB_SEGMENTS = ["*", "?", "**", "a*", "*.b", "?-", "é*"]
ODD_GLOB_SEGMENTS = ["[ab]", "[!a]", "[[]*", "*[?]", "a[b"]


def _escaped(segment: str) -> str:
    return "".join(f"[{c}]" if c in paths.SPECIAL or c == " " else c for c in segment)


@st.composite
def glob_and_a_path_it_matches(draw: st.DrawFn) -> tuple[str, str]:
    """A glob, and a path built from it by choosing what each of its wildcards matches."""
    odd = draw(st.booleans())
    chars = st.sampled_from(ODD_CHARS if odd else CHARS)
    names = st.text(chars, min_size=1, max_size=4).filter(lambda s: s not in (".", ".."))
    choices = st.sampled_from(GLOB_SEGMENTS + (ODD_GLOB_SEGMENTS if odd else [])) | names
    segments = draw(st.lists(choices, min_size=1, max_size=4))
    if draw(st.booleans()):  # a '**' between other segments: the case the loosening folds
        segments.insert(draw(st.integers(0, len(segments))), "**")
    try:
        glob = paths.parse("./" + "/".join(segments))  # './': a first segment 'a:b' stays a segment
    except Invalid:
        glob = paths.parse("a/**")
    parts: list[str] = []
    for segment in glob.segments:
        if segment == paths.GLOBSTAR:
            parts += draw(st.lists(names, max_size=3))
            continue
        text = ""
        for token in segment:
            if token[0] == "c":
                text += token[1]
            elif token[0] == "?":
                text += draw(chars)
            elif token[0] == "*":
                text += draw(st.text(chars, max_size=3))
            else:
                members = [c for c in ODD_CHARS if any(lo <= ord(c) <= hi for lo, hi in token[2]) != token[1]]
                text += draw(st.sampled_from(members or ["a"]))
        parts.append(text)
    return glob.text, "./" + "/".join(_escaped(part) for part in parts)


@settings(max_examples=300, deadline=None)
@given(glob_and_a_path_it_matches(), st.lists(resources, max_size=6))
@example(("a*", "./a:b"), [])  # the path is written './a:b', the glob 'a*'
@example(("?b:*.txt", "./ab:c.txt"), [])
@example(("./ab:*", "./ab:c"), [])  # and the glob './ab:*'
@example(("x/*[ ]", "x/a[ ]"), [])  # a final space, written '[ ]'
@example(("./ /**", "./[ ]"), [])  # a file named ' ', written '[ ]', under the glob of the directory ' '
@example(("a/b /**", "a/b /."), [])  # the same, deeper: 'a/b[ ]' under 'a/b /**'
def test_the_narrowing_never_hides_a_path_a_glob_matches(pair: tuple[str, str], others: list[str]) -> None:
    """Both ways round, among other locks: a glob claim finds the path lock, a path claim the glob lock."""
    glob, path = pair
    try:
        path = normalise(path)
    except Invalid:
        return
    if paths.parse(path).kind != "path" or not overlaps(glob, path):
        return  # the choice made a segment '.' or '..', or a class had no member among CHARS
    others = [r for r in dict.fromkeys(map(_normal, others)) if r is not None and r not in (glob, path)]
    for held, wanted in ((path, glob), (glob, path)):
        with _store() as conn:
            tx = Tx(conn, NOW)
            for i, resource in enumerate([*others, held]):
                assert lock_sql.claim(tx, f"holder{i}", [resource], "shared", 60, None).granted
            result = lock_sql.claim(tx, "probe", [wanted], "exclusive", 60, None)
            assert held in {c.resource for c in result.conflicts}, (held, wanted, result.conflicts)
            listed = lock_sql.list_locks(tx, None, wanted, None, None)
            assert held in {lock.resource for lock in listed.locks}


@settings(max_examples=100, deadline=None)
@given(st.lists(resources, min_size=1, max_size=12), st.lists(resources, min_size=1, max_size=4))
def test_a_claim_of_several_resources_finds_what_each_of_them_overlaps(held: list[str], wanted: list[str]) -> None:
    held = [r for r in dict.fromkeys(map(_normal, held)) if r is not None]
    wanted = [r for r in dict.fromkeys(map(_normal, wanted)) if r is not None]
    if not wanted:
        return
    with _store() as conn:
        tx = Tx(conn, NOW)
        for i, resource in enumerate(held):
            assert lock_sql.claim(tx, f"holder{i}", [resource], "shared", 60, None).granted
        expected = [(w, r) for w in wanted for r in held if overlaps(w, r)]
        for page in (lock_sql.PAGE, 1):  # and one candidate a page: every search goes on after its last row
            with patch.object(lock_sql, "PAGE", page):
                result = lock_sql.claim(tx, "probe", wanted, "exclusive", 60, None)
            found = [(c.requested, c.resource) for c in result.conflicts]
            assert sorted(found) == sorted(expected)
            assert [w for w, _ in found] == sorted((w for w, _ in found), key=wanted.index), "in the order claimed"


class _CountingTx(Tx):
    """A Tx that counts the candidate rows the rules read."""

    __slots__ = ("candidates",)

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.candidates = 0

    def all(self, query: str, params: object = ()) -> list:
        rows = super().all(query, params)
        if query in (
            "locks.at",
            "locks.paths_under",
            "locks.globs_over_paths",
            "locks.globs_above",
            "locks.globs_under",
        ):
            self.candidates += len(rows)
        return rows


def test_a_refusal_lists_fifty_counts_up_to_the_cap_and_reads_no_further() -> None:
    with _store() as conn:
        tx = _CountingTx(conn, NOW)
        for i in range(600):
            assert lock_sql.claim(tx, f"holder{i % 7}", [f"src/d{i % 9}/f{i}.py"], "shared", 60, None).granted
        tx.candidates = 0
        result = lock_sql.claim(tx, "probe", ["**/*.py"], "exclusive", 60, None)
        assert len(result.conflicts) == lock_sql.MAX_CONFLICTS and result.more_conflicts == lock_sql.MAX_COUNTED
        assert tx.candidates == lock_sql.MAX_CONFLICTS + lock_sql.MAX_COUNTED


def test_the_end_of_a_prefix_range_is_the_next_text_in_byte_order() -> None:
    after = lock_sql._after_all_starting
    assert after("yp.") == "yp/" and after("") is None
    assert after("a\U0010ffff") == "b" and after("\U0010ffff") is None
    assert after("\ud7ff") == "\ue000"  # no surrogate: it could not be encoded for the store
    for text in ("yp.", "a\U0010ffff", "\ud7ff", "é"):
        assert all((text + tail).encode() < after(text).encode() for tail in ("", "\U0010ffff" * 3, "\x7f"))


BROAD = st.sampled_from(["**", "a/**", "**/*.py", "a/**/*b", "a/**/*", "ab/x.py/**", "./ab:c/**"])  # SQL lists it
NEAR = st.sampled_from(["deploy:prod", "a.b", "ab", "a/[ab]/*", "a/[!a]", "a/*.py", "./ab:c", "./ab:*"])  # names, ...


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(NEAR, NEAR, BROAD, resources), st.sampled_from(["h0", "h1", "h2"]), st.booleans())),
    st.one_of(BROAD, BROAD, NEAR, resources),
    st.sampled_from([None, "h1"]),
    st.sampled_from([None, 1, 3]),
)
@example([("a.b", "h0", True), ("a", "h1", True), ("a/x", "h1", True), ("deploy:prod", "h2", True)], "a/**", None, None)
@example([("a/[ab]/*", "h0", True), ("a/*.py", "h1", True), ("b/[!a]", "h1", False)], "a/**", None, 1)
@example([("deploy:prod", "h0", True), ("a/[ab]/*", "h1", True), ("a.b", "h1", True)], "**", "h1", None)
@example(
    [("a/x.py", "h0", True), ("a.py", "h1", True), ("a/b/y.py", "h1", True), ("a/*b", "h2", True)], "a/**/*.py", None, 1
)
def test_a_listing_is_the_live_overlapping_locks_by_resource_then_token(
    held: list[tuple[str, str, bool]], wanted: str, holder: str | None, limit: int | None
) -> None:
    wanted = _normal(wanted)
    if wanted is None:
        return
    with _store() as conn:
        for resource, owner, live in held:  # shared: they never conflict; the expired ones lapsed a minute ago
            resource = _normal(resource)
            if resource is not None:
                lock_sql.claim(Tx(conn, NOW if live else NOW - 120_000), owner, [resource], "shared", 60, None)
        rows = conn.execute("SELECT resource, holder, token, expires_at FROM locks").fetchall()
        expected = sorted(
            (row["resource"], row["token"])
            for row in rows
            if row["expires_at"] > NOW and holder in (None, row["holder"]) and overlaps(wanted, row["resource"])
        )
        for page in (lock_sql.PAGE, 1):  # one candidate a page, and a holder's locks are then too many to decide
            with patch.object(lock_sql, "PAGE", page):
                listed = lock_sql.list_locks(Tx(conn, NOW), None, wanted, holder, limit)
            assert [(lock.resource, lock.token) for lock in listed.locks] == expected[:limit]
            assert listed.more == len(expected) - len(listed.locks)

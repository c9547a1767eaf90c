"""Resources: normal forms, kinds, and `overlaps` checked against an independent glob matcher."""

from __future__ import annotations

import fnmatch
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st

from teamroom.errors import Invalid
from teamroom.paths import ancestors, common_path, normalise, overlaps, parse
from teamroom.store import ManualClock, Store, open_store

# --- an independent matcher: fnmatch per segment, `**` spans zero or more segments -----------


def matches(pattern: str, path: str) -> bool:
    """Whether the plain ``path`` matches the normalised ``pattern`` (written without teamroom's code)."""
    return _match(pattern.split("/"), path.split("/"))


def _match(pat: list[str], segs: list[str]) -> bool:
    if not pat:
        return not segs
    if pat[0] == "**":
        return any(_match(pat[1:], segs[k:]) for k in range(len(segs) + 1))
    return bool(segs) and fnmatch.fnmatchcase(segs[0], pat[0]) and _match(pat[1:], segs[1:])


# --- normal forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text", "kind", "prefix"),
    [
        ("./a//b", "a/b", "path", "a/b"),
        ("a/./b/../c", "a/c", "path", "a/c"),
        ("  src/app.py ", "src/app.py", "path", "src/app.py"),
        ("src/auth/", "src/auth/**", "glob", "src/auth"),
        ("src/**/**/x.py", "src/**/x.py", "glob", "src"),
        ("src/***.py", "src/*.py", "glob", "src"),
        ("[^x]y", "[!x]y", "glob", ""),
        ("[a]b/c", "ab/c", "path", "ab/c"),
        ("pages/[[]id].tsx", "pages/[[]id].tsx", "path", "pages/[[]id].tsx"),
        ("pages/[id].tsx", "pages/[id].tsx", "glob", "pages"),
        ("src/a[b", "src/a[[]b", "path", "src/a[[]b"),
        ("deploy:prod", "deploy:prod", "name", "deploy:prod"),
        ("branch:feature/x", "branch:feature/x", "name", "branch:feature/x"),
        ("./odd:file.txt", "./odd:file.txt", "path", "./odd:file.txt"),
        ("./a:b.txt", "./a:b.txt", "path", "./a:b.txt"),
        ("x/../~notes", "./~notes", "path", "./~notes"),
        ("[o]dd:x/", "./odd:x/**", "glob", "./odd:x"),
        ("./ spaced", "./ spaced", "path", "./ spaced"),
        ("a/b /.", "a/b[ ]", "path", "a/b "),  # the key is written as a glob's prefix is: no escape
        ("src/a:b.py", "src/a:b.py", "path", "src/a:b.py"),
    ],
)
def test_resources_are_normalised_and_classified(raw: str, text: str, kind: str, prefix: str) -> None:
    resource = parse(raw)
    assert (resource.text, resource.kind, resource.prefix) == (text, kind, prefix)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("/etc/passwd", "absolute"),
        ("C:/work/x.py", "absolute"),
        ("..", "climbs out"),
        ("src/../../x", "climbs out"),
        ("**/../x", "after '**'"),
        (".", "repository root"),
        ("", "empty"),
        ("src\\app.py", "backslash"),
        ("deploy:", "nothing after"),
        ("[z-a].py", "reversed"),
        ("a\tb", "control"),
        ("a\x85b", "control"),
        ("src/\x9b31m.py", "control"),
        ("x" * 1025, "limit"),
        ("a/" * 512, "once normalised"),
        ("[" * 1000, "once normalised"),
    ],
)
def test_a_resource_outside_the_repository_or_malformed_is_invalid(raw: str, words: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse(raw)
    assert str(caught.value).startswith("invalid: ") and words in str(caught.value)


def test_ancestors_list_every_literal_prefix_from_the_root() -> None:
    assert ancestors("a/b/c") == ["", "a", "a/b", "a/b/c"]
    assert ancestors("") == [""]


# --- overlaps: examples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("src/auth/login.py", "src/auth/login.py", True),
        ("src/auth/login.py", "./src//auth/login.py", True),
        ("src/auth/login.py", "src/auth/logout.py", False),
        ("src/auth/**", "src/auth/login.py", True),
        ("src/auth/**", "src/*/login.py", True),
        ("src/a/**", "src/b/x.py", False),
        ("src/auth/**", "src/auth", True),  # `**` also matches zero segments
        ("src/auth/*", "src/auth", False),
        ("*.md", "docs/a.md", False),
        ("**/*.md", "docs/a.md", True),
        ("**/*.md", "src/**/*.py", False),
        ("src/**/test_*.py", "**/tests/test_a*.py", True),
        ("a*b", "b*a", False),
        ("[ab]*", "[!ab]*", False),
        ("[a-m]x", "[k-z]x", True),
        ("pages/[[]id].tsx", "pages/*.tsx", True),
        ("pages/[[]id].tsx", "pages/[id].tsx", False),
        ("[]a]x", "]x", True),
        ("[a-]x", "-x", True),
        ("[!]]", "]", False),
        ("[+-0]", "?", True),  # a range spanning '/' still matches only within a segment
        ("a[+-0]b", "a/b", False),
        ("deploy:prod", "deploy:prod", True),
        ("deploy:prod", "deploy:staging", False),
        ("deploy:prod", "**", False),
    ],
)
def test_overlaps_decides_whether_some_path_matches_both(a: str, b: str, expected: bool) -> None:
    assert overlaps(a, b) is expected
    assert overlaps(b, a) is expected


def test_the_known_over_approximation_is_a_common_match_of_only_dot_dot() -> None:
    assert common_path(".?", "?.") == ".."
    assert overlaps(".?", "?.")  # documented: no normalised path has a '..' segment


# --- overlaps: properties -------------------------------------------------------------------

ALPHABET = "ab."
literal_segments = st.text(alphabet=ALPHABET, min_size=1, max_size=3).filter(lambda s: s not in (".", ".."))
real_paths = st.lists(literal_segments, min_size=1, max_size=4).map("/".join)
char_patterns = st.sampled_from(["a", "b", ".", "?", "*", "[ab]", "[!a]", "[a-b]", "[.b]", "[!.]"])
segment_patterns = st.one_of(
    st.just("**"),
    st.lists(char_patterns, min_size=1, max_size=3).map("".join),
)
patterns = st.lists(segment_patterns, min_size=1, max_size=4).map("/".join)


def _normal(pattern: str) -> str | None:
    try:
        return normalise(pattern)
    except Invalid:
        return None  # e.g. a segment that normalises to '..' at the root


@settings(max_examples=200, deadline=None)
@given(patterns, patterns, st.lists(real_paths, min_size=1, max_size=30))
def test_overlaps_never_misses_a_real_path_that_matches_both(a: str, b: str, samples: list[str]) -> None:
    a, b = _normal(a), _normal(b)
    if a is None or b is None:
        return
    if any(matches(a, p) and matches(b, p) for p in samples):
        assert overlaps(a, b)


@settings(max_examples=200, deadline=None)
@given(real_paths, st.data())
def test_two_generalisations_of_one_path_overlap(path: str, data: st.DataObject) -> None:
    def generalise(segment: str) -> str:
        choice = data.draw(st.sampled_from(["keep", "star", "globstar", "chars"]))
        if choice == "star":
            return "*"
        if choice == "globstar":
            return "**/" + segment if data.draw(st.booleans()) else "**"
        if choice == "chars":
            return "".join(data.draw(st.sampled_from([c, "?", "*" + c, f"[{c}x]"])) for c in segment)
        return segment

    a = normalise("/".join(generalise(s) for s in path.split("/")))
    b = normalise("/".join(generalise(s) for s in path.split("/")))
    assert matches(a, path) and matches(b, path)
    assert overlaps(a, b)


@settings(max_examples=300, deadline=None)
@given(patterns, patterns)
def test_every_overlap_comes_with_a_path_that_matches_both(a: str, b: str) -> None:
    a, b = _normal(a), _normal(b)
    if a is None or b is None:
        return
    witness = common_path(a, b)
    assert overlaps(a, b) is (witness is not None)
    if witness is not None:
        assert matches(a, witness), (a, witness)
        assert matches(b, witness), (b, witness)


@settings(max_examples=250, deadline=None)
@given(patterns, real_paths)
def test_a_glob_overlaps_a_plain_path_exactly_when_it_matches_it(pattern: str, path: str) -> None:
    pattern = _normal(pattern)
    if pattern is None:
        return
    assert overlaps(pattern, path) is matches(pattern, path)
    assert common_path(pattern, path) == (path if matches(pattern, path) else None)


@settings(max_examples=300, deadline=None)
@given(patterns)
def test_normalising_twice_changes_nothing_and_a_pattern_overlaps_itself(raw: str) -> None:
    text = _normal(raw)
    if text is None:
        return
    assert normalise(text) == text
    assert overlaps(text, text)


@settings(max_examples=300, deadline=None)
@given(real_paths, real_paths)
def test_two_plain_paths_overlap_exactly_when_equal(a: str, b: str) -> None:
    assert overlaps(a, b) is (normalise(a) == normalise(b))


# --- the normal form reads back as itself ---------------------------------------------------

# First segments that a careless normal form turns into something else: a name (`odd:x`), a drive
# (`a:b`, `C:`), a home directory (`~x`), or text `strip` eats (spaces, U+00A0, U+3000, U+0085).
ODD_FIRSTS = ["odd:name.txt", "a:b.txt", "C:", "c:x", "~", "~x", " x", "\u00a0x", "\u3000", "\u2003y", "db:prod",
              "ab:*", "[o]dd:x", "a[:]b", "ab+c.d-e:f", "x:", "[ ]", "*:name.txt", "**", "*.txt"]  # fmt: skip
LEADS = ["", "./", ".//", "z/../", "[.]/", " ", "./ "]
LATER = ["a", "name.txt", "*.txt", "**", "[ab]", "..", ".", "x y", " ", "\u00a0", "b:c", "~"]
TAILS = ["", "/", "/.", " ", "/ ", "\u3000", " /.", "[ ]"]

odd_resources = st.one_of(
    st.tuples(
        st.sampled_from(LEADS),
        st.sampled_from(ODD_FIRSTS),
        st.lists(st.sampled_from(LATER), max_size=3),
        st.sampled_from(TAILS),
    ).map(lambda t: t[0] + "/".join([t[1], *t[2]]) + t[3]),
    st.text(alphabet=":~Cab./*?[]! \u00a0\x85-", min_size=1, max_size=12),
)


def _parsed(raw: str):
    try:
        return parse(raw)
    except Invalid:
        return None


@settings(max_examples=400, deadline=None)
@given(odd_resources)
def test_the_normal_form_of_every_resource_parses_back_to_itself_with_the_same_kind(raw: str) -> None:
    first = _parsed(raw)
    if first is None:
        return
    again = parse(first.text)
    assert (again.text, again.kind, again.prefix, again.plain) == (first.text, first.kind, first.prefix, first.plain)


@contextmanager
def _store_in_a_portal() -> Iterator[tuple[BlockingPortal, Store]]:
    """One store for a whole Hypothesis run, driven from the test's thread through a blocking portal."""
    with tempfile.TemporaryDirectory() as tmp, start_blocking_portal() as portal:
        store = open_store(Path(tmp) / "s.db", clock=ManualClock())
        portal.call(store.open)
        try:
            yield portal, store
        finally:
            portal.call(store.close)


odd_files = st.tuples(
    st.sampled_from(["./", "z/../", "[.]/"]),
    st.sampled_from(["odd", "a", "C", "~", "~x", " x", "db+x.y"]),
    st.text(alphabet="abz: ", min_size=1, max_size=5).filter(lambda s: s.strip(" ") == s),
).map(lambda t: f"{t[0]}{t[1]}:{t[2]}.txt")


def test_an_exclusively_held_file_whose_first_segment_has_a_colon_blocks_globs_over_it() -> None:
    with _store_in_a_portal() as (portal, store):

        @settings(max_examples=150, deadline=None)
        @given(odd_files)
        def check(raw: str) -> None:
            file = normalise(raw)  # the tool normalises, the store parses the normal form again
            name = file.rsplit(":", 1)[1]
            held = portal.call(store.claim_lock, "a", [file], "exclusive", 900, None)
            assert held.granted and [lock.resource for lock in held.locks] == [file]
            try:
                for glob in ("**", "*.txt", f"*:{name}", "*:*"):
                    refused = portal.call(store.claim_lock, "b", [glob], "exclusive", 900, None)
                    assert not refused.granted, (file, glob)
                    assert [(c.resource, c.held_by) for c in refused.conflicts] == [(file, "a")]
                shown = portal.call(store.locks, "b", "*.txt", None, None)
                assert [lock.resource for lock in shown.locks] == [file]
            finally:
                portal.call(store.release_lock, "a", None)

        check()

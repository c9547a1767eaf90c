"""Lockable resources: normalising them and deciding whether two of them overlap. No I/O.

A resource is one of three kinds:

- a *path*, relative to the repository root: ``src/auth/login.py``;
- a *glob* over such paths: ``*`` and ``?`` match within one segment, ``[...]`` one character
  (``[!...]`` or ``[^...]`` negated), and a whole segment ``**`` matches zero or more segments;
- a *name*: ``deploy:prod``, anything whose text before the first ``:`` is a word of two or more
  characters (letters, digits, ``+._-``) with no ``/`` in it.

Two resources overlap when some path matches both. For paths and globs `overlaps` decides this
exactly, segment by segment (the classic "do two patterns' languages intersect" search), with one
known over-approximation: it may say "overlaps" when the only common match has a segment ``.`` or
``..`` (``.?`` and ``?.`` share only ``..``), which no normalised path has. It never says "no
overlap" when one exists. A name overlaps only the identical name.

Normal form: ``./a//b/`` is ``a/b/**`` (a trailing slash means "the directory and everything in
it"), ``a/./b/../c`` is ``a/c``, runs of ``*`` collapse, ``**/**`` is ``**``, ``[^x]`` is written
``[!x]``, and a one-character class of an ordinary character (``[a]``) is that character. A literal
``*``, ``?`` or ``[`` in a file name is written in brackets: ``pages/[[]id].tsx`` is the file
``pages/[id].tsx``, a plain path. The normal form parses back to itself, with the same kind: a path
whose first segment would read as a name, a drive or a home directory keeps its ``./``
(``./odd:name.txt``, ``./a:b.txt``, ``./~x``), as does one starting with a space (``./ x``), a space
at the very end is written ``[ ]``, and a normal form over 1,024 characters is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from teamroom.errors import Invalid

Kind = Literal["path", "glob", "name"]

MAX_CHARS = 1024
GLOBSTAR = "**"
SPECIAL = frozenset("*?[")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9+._-]+:")
_DRIVE = re.compile(r"^[A-Za-z]:")

# Segment tokens (tuples: hashable, cheap to compare):
#   ("c", char)                 a literal character
#   ("?",)                      any one character
#   ("*",)                      any run of characters, also none
#   ("[", negated, ranges, raw) a character class; ranges: ((lo, hi), ...) code points, merged
STAR = ("*",)
ANY = ("?",)
Token = tuple
Segment = tuple  # a tuple of tokens, or the string GLOBSTAR

_SLASH = ord("/")
_FIRST_PRINTABLE = 0x20
_LAST_CODE_POINT = 0x10FFFF
_LOWERCASE = ((ord("a"), ord("z")),)


@dataclass(frozen=True, slots=True)
class Resource:
    """A parsed, normalised resource."""

    text: str  # the normal form: what is stored and shown; the identity of a resource
    kind: Kind = field(compare=False)
    # leading segments without wildcards ("" if none): the index key; a name's text, a path's text
    # with a final space unescaped (so that it meets the prefix of a glob over it)
    prefix: str = field(compare=False)
    segments: tuple[Segment, ...] = field(default=(), compare=False)  # for paths and globs
    plain: str = field(
        default="", compare=False
    )  # a path's text without escapes: ``pages/[[]id].tsx`` -> ``pages/[id].tsx``
    suffix: str = field(default="", compare=False)  # literal end of the last segment: ``.py`` of ``src/*.py``
    regex: re.Pattern[str] | None = field(default=None, compare=False)  # a glob's matcher of ``"/" + path``


def normalise(raw: str) -> str:
    """The normal form of a resource; `Invalid` (saying how to fix it) if it is not one."""
    return parse(raw).text


def overlaps(a: str | Resource, b: str | Resource) -> bool:
    """Whether some path matches both (for names: whether they are the same name)."""
    ra, rb = _resource(a), _resource(b)
    if ra.kind == "name" or rb.kind == "name" or (ra.kind == "path" and rb.kind == "path"):
        return ra.text == rb.text
    return common_path(ra, rb) is not None


def common_path(a: str | Resource, b: str | Resource) -> str | None:
    """A path matched by both, as plain text (no escaping), or None if there is none.

    For two names, the name itself when they are the same. Used to explain a conflict and to test
    `overlaps`: the answer can be checked with any independent glob matcher.
    """
    ra, rb = _resource(a), _resource(b)
    if ra.kind == "name" or rb.kind == "name":
        return ra.text if ra.text == rb.text else None
    if ra.kind == "path" or rb.kind == "path":  # the common case, and a fast one: match the path
        path, pattern = (ra, rb) if ra.kind == "path" else (rb, ra)
        plain = path.plain
        if pattern.kind == "path":
            return plain if pattern.text == path.text else None
        if not plain.endswith(pattern.suffix) or not _tail_fits(pattern, path):
            return None
        return plain if pattern.regex.fullmatch("/" + plain) else None  # type: ignore[union-attr]
    if not (ra.suffix.endswith(rb.suffix) or rb.suffix.endswith(ra.suffix)):
        return None  # a common path's last segment would end with both
    if not _tails_agree(ra, rb):
        return None  # the quick part of `_ends_meet`: two names for one segment near the end
    if not _ends_meet(ra.segments, rb.segments):
        return None
    found = _common_segments(ra.segments, rb.segments)
    if found is None:
        return None
    return "/".join(found) if found else "x"  # both all `**`: any path will do


def suffixes(text: str) -> list[str]:
    """Every end of ``text``, reversed, from none to all: ``"a.py"`` -> ``["", "y", "yp", "yp.", "yp.a"]``."""
    reverse = text[::-1]
    return [reverse[:i] for i in range(len(reverse) + 1)]


def ancestors(path: str) -> list[str]:
    """``a/b/c`` -> ``["", "a", "a/b", "a/b/c"]``: every literal prefix a glob lock could have."""
    parts = path.split("/") if path else []
    return [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


def under_range(prefix: str) -> tuple[str, str]:
    """Bounds (low inclusive, high exclusive) of every text strictly below ``prefix/`` in byte order."""
    return prefix + "/", prefix + "0"  # "0" is the character right after "/"


def _resource(value: str | Resource) -> Resource:
    return value if isinstance(value, Resource) else parse(value)


# --- parsing --------------------------------------------------------------------------------


@lru_cache(maxsize=65_536)
def parse(raw: str) -> Resource:
    """Parse and normalise one resource; `Invalid` says what is wrong and how to fix it."""
    if not isinstance(raw, str):
        raise Invalid("each resource must be a string, e.g. 'src/app.py', 'src/auth/**' or 'deploy:prod'")
    text = raw.strip()
    if not text:
        raise Invalid("a resource is empty; pass a path ('src/app.py'), a glob ('src/**') or a name ('deploy:prod')")
    if len(text) > MAX_CHARS:
        raise Invalid(f"resource {text[:40]!r}... is {len(text)} characters; the limit is {MAX_CHARS}")
    if any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in text):  # C0, DEL and C1 (U+009B is CSI)
        raise Invalid(f"resource {text!r} contains control characters; remove them")
    if not text.isascii() and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise Invalid(f"resource {text!r} is not valid unicode (a lone surrogate); send UTF-8 text")
    if _NAME.match(text):
        if text.endswith(":"):
            raise Invalid(f"resource {text!r} names nothing after ':'; write e.g. 'deploy:prod'")
        return Resource(text=text, kind="name", prefix=text)
    return _parse_path(text, raw)


def _parse_path(text: str, raw: str) -> Resource:
    if text.startswith("/") or _DRIVE.match(text):
        raise Invalid(
            f"resource {raw!r} is an absolute path; pass it relative to the repository root, e.g. 'src/app.py'"
        )
    if text.startswith("~"):
        raise Invalid(f"resource {raw!r} starts with '~'; pass a path relative to the repository root")
    if "\\" in text:
        raise Invalid(f"resource {raw!r} contains a backslash; separate directories with '/' (e.g. 'src/app.py')")
    segments: list[Segment] = []
    for part in text.split("/"):
        if not part:
            continue
        segment = _parse_segment(part)
        literal = _literal(segment)
        if literal == ".":
            continue
        if literal == "..":
            if not segments:
                raise Invalid(f"resource {raw!r} climbs out of the repository with '..'; pass a path inside it")
            if segments[-1] == GLOBSTAR:
                raise Invalid(f"resource {raw!r} has '..' after '**', which could climb anywhere; remove the '..'")
            segments.pop()
            continue
        if segment == GLOBSTAR and segments and segments[-1] == GLOBSTAR:
            continue
        segments.append(segment)
    if not segments:
        raise Invalid(f"resource {raw!r} is the repository root itself; to lock everything, claim '**'")
    if text.endswith("/") and segments[-1] != GLOBSTAR:
        segments.append(GLOBSTAR)  # "dir/" means the directory and everything in it
    plain_rendered = [_render(s) for s in segments]
    rendered = _reads_back(list(plain_rendered))
    text = "/".join(rendered)
    if len(text) > MAX_CHARS:
        raise Invalid(
            f"resource {raw[:40]!r}... is {len(text)} characters once normalised ('dir/' is 'dir/**', a lone '['"
            f" is '[[]'); the limit is {MAX_CHARS}"
        )
    literals = [_literal(s) for s in segments]
    literal_count = next((i for i, literal in enumerate(literals) if literal is None), len(segments))
    if literal_count == len(segments):
        plain = "/".join(literals)  # type: ignore[arg-type]
        # Its prefix (the index key) is written as a glob's literal prefix is, without the escape of a
        # final space, so that a path and a glob over it meet in the same key (' ' and './ /**').
        key = "/".join(_leading(plain_rendered))
        return Resource(text, "path", key, tuple(segments), plain=plain, suffix=literals[-1])  # type: ignore[arg-type]
    return Resource(
        text=text,
        kind="glob",
        prefix="/".join(rendered[:literal_count]),
        segments=tuple(segments),
        suffix=_literal_suffix(segments[-1]),
        regex=_regex(segments),
    )


def _reads_back(rendered: list[str]) -> list[str]:
    """The rendered segments, with their ends written so that the text parses back to the same resource.

    `parse` strips surrounding whitespace and reads a leading ``word:`` as a name, ``C:`` as a drive
    and ``~`` as a home directory. A path whose first segment starts like that keeps a ``./``
    (``./odd:name.txt``, ``./a:b.txt``, ``./~x``; also ``./ x``), and whitespace at the very end is
    written as a one-character class (``a/b[ ]``).
    """
    last = rendered[-1]
    if last[-1].isspace():
        rendered[-1] = f"{last[:-1]}[{last[-1]}]"
    return _leading(rendered)


def _leading(rendered: list[str]) -> list[str]:
    """The rendered segments with a ``./`` before a first segment that would read as a name, drive or home."""
    first = rendered[0]
    if _NAME.match(first) or _DRIVE.match(first) or first.startswith("~") or first[0].isspace():
        rendered[0] = "./" + first
    return rendered


def _literal_suffix(segment: Segment) -> str:
    if segment == GLOBSTAR:
        return ""
    tail: list[str] = []
    for token in reversed(segment):
        if token[0] != "c":
            break
        tail.append(token[1])
    return "".join(reversed(tail))


def _parse_segment(part: str) -> Segment:
    if part == GLOBSTAR:
        return GLOBSTAR
    tokens: list[Token] = []
    i, n = 0, len(part)
    while i < n:
        c = part[i]
        if c == "*":
            if not tokens or tokens[-1] != STAR:
                tokens.append(STAR)
            i += 1
        elif c == "?":
            tokens.append(ANY)
            i += 1
        elif c == "[":
            token, i = _parse_class(part, i)
            tokens.append(token)
        else:
            tokens.append(("c", c))
            i += 1
    return tuple(tokens)


def _parse_class(part: str, start: int) -> tuple[Token, int]:
    """The class starting at ``part[start] == '['``; an unclosed ``[`` is a literal character."""
    i = start + 1
    negated = i < len(part) and part[i] in "!^"
    if negated:
        i += 1
    body_start = i
    if i < len(part) and part[i] == "]":
        i += 1  # a ']' first is a member
    close = part.find("]", i)
    if close < 0:
        return ("c", "["), start + 1
    body = part[body_start:close]
    ranges: list[tuple[int, int]] = []
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] == "-":
            lo, hi = ord(body[j]), ord(body[j + 2])
            if lo > hi:
                low, high = body[j + 2], body[j]
                raise Invalid(f"character range '{high}-{low}' in {part!r} is reversed; write '{low}-{high}'")
            ranges.append((lo, hi))
            j += 3
        else:
            ranges.append((ord(body[j]), ord(body[j])))
            j += 1
    merged = _merge(ranges)
    if not negated and len(merged) == 1 and merged[0][0] == merged[0][1]:
        return ("c", chr(merged[0][0])), close + 1
    return ("[", negated, merged, body), close + 1


def _merge(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _literal(segment: Segment) -> str | None:
    """The text of a segment without wildcards, else None."""
    if segment == GLOBSTAR or any(t[0] != "c" for t in segment):
        return None
    return "".join(t[1] for t in segment)


def _render(segment: Segment) -> str:
    if segment == GLOBSTAR:
        return GLOBSTAR
    out = []
    for token in segment:
        if token[0] == "c":
            out.append(f"[{token[1]}]" if token[1] in SPECIAL else token[1])
        elif token[0] == "[":
            out.append(f"[{'!' if token[1] else ''}{token[3]}]")
        else:
            out.append(token[0])
    return "".join(out)


# --- matching a plain path ----------------------------------------------------------------


def _regex(segments: list[Segment]) -> re.Pattern[str]:
    """A regex matching ``"/" + path`` for exactly the plain paths these segments match."""
    parts = [
        "(?:/[^/]+)*" if segment == GLOBSTAR else "/" + "".join(_token_regex(token) for token in segment)
        for segment in segments
    ]
    return re.compile("".join(parts), re.DOTALL)


def _token_regex(token: Token) -> str:
    if token[0] == "c":
        return re.escape(token[1])
    if token == STAR:
        return "[^/]*"
    if token == ANY:
        return "[^/]"
    negated, ranges = token[1], token[2]
    members = "".join(
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges
    )
    return f"[^/{members}]" if negated else f"(?!/)[{members}]"


# --- quick answers: the segments before the first `**` and after the last one are fixed -----


@lru_cache(maxsize=65_536)
def _literal_tail(pattern: Resource) -> tuple[tuple[int, str], ...]:
    """(position from the end, text) of each literal segment after the last ``**``."""
    out = []
    for back, segment in enumerate(reversed(pattern.segments), start=1):
        if segment == GLOBSTAR:
            break
        literal = _literal(segment)
        if literal is not None:
            out.append((back, literal))
    return tuple(out)


@lru_cache(maxsize=65_536)
def _parts(path: Resource) -> tuple[str, ...]:
    return tuple(path.plain.split("/"))


def _tail_fits(pattern: Resource, path: Resource) -> bool:
    """False when a literal segment near the end of ``pattern`` is not the path's segment there."""
    parts = _parts(path)
    return all(back <= len(parts) and parts[-back] == literal for back, literal in _literal_tail(pattern))


def _tails_agree(a: Resource, b: Resource) -> bool:
    """False when both patterns have a literal segment at one place from the end, and they differ."""
    tail = dict(_literal_tail(a))
    return all(tail.get(back, literal) == literal for back, literal in _literal_tail(b))


@lru_cache(maxsize=65_536)
def _fixed(segments: tuple[Segment, ...]) -> tuple[int, int]:
    """How many segments come before the first ``**`` and after the last (all of them if none)."""
    if GLOBSTAR not in segments:
        return len(segments), len(segments)
    return segments.index(GLOBSTAR), segments[::-1].index(GLOBSTAR)


def _ends_meet(a: tuple[Segment, ...], b: tuple[Segment, ...]) -> bool:
    """False when the first or last segments, which every match aligns, cannot match one segment."""
    (head_a, tail_a), (head_b, tail_b) = _fixed(a), _fixed(b)
    pairs = [(a[i], b[i]) for i in range(min(head_a, head_b))]
    pairs += [(a[-i], b[-i]) for i in range(1, min(tail_a, tail_b) + 1)]
    return all(x == y or _common_segment(x, y) is not None for x, y in pairs)


# --- overlap --------------------------------------------------------------------------------


def _common_segments(a: tuple[Segment, ...], b: tuple[Segment, ...]) -> list[str] | None:
    """Literal segments of a path matching both segment patterns, or None.

    ``go(i, j)``: a path matching both ``a[i:]`` and ``b[j:]``. A ``**`` either matches nothing
    more or swallows one segment the other side produces; two ``**`` swallowing the same segment
    is never needed (drop that segment and both still match).
    """
    memo: dict[tuple[int, int], list[str] | None] = {}

    def go(i: int, j: int) -> list[str] | None:
        key = (i, j)
        if key in memo:
            return memo[key]
        found: list[str] | None = None
        if i == len(a) and j == len(b):
            found = []
        elif i < len(a) and a[i] == GLOBSTAR:
            found = go(i + 1, j)
            if found is None and j < len(b):
                found = _swallow(b[j], go(i, j + 1))
        elif j < len(b) and b[j] == GLOBSTAR:
            found = go(i, j + 1)
            if found is None and i < len(a):
                found = _swallow(a[i], go(i + 1, j))
        elif i < len(a) and j < len(b):
            segment = _common_segment(a[i], b[j])
            if segment is not None:
                rest = go(i + 1, j + 1)
                found = None if rest is None else [segment, *rest]
        memo[key] = found
        return found

    return go(0, 0)


def _swallow(segment: Segment, rest: list[str] | None) -> list[str] | None:
    """``rest`` after one segment matching ``segment`` (nothing when it is ``**``: it matched none)."""
    if rest is None or segment == GLOBSTAR:
        return rest
    return [_common_segment(segment, (STAR,)) or "x", *rest]


@lru_cache(maxsize=65_536)
def _common_segment(x: Segment, y: Segment) -> str | None:
    """A non-empty segment matching both token sequences, or None."""
    memo: dict[tuple[int, int], str | None] = {}

    def go(i: int, j: int) -> str | None:
        key = (i, j)
        if key in memo:
            return memo[key]
        found: str | None = None
        if i == len(x) and j == len(y):
            found = ""
        elif i < len(x) and x[i] == STAR:
            found = go(i + 1, j)
            if found is None and j < len(y):
                found = _consume(y[j], go(i, j + 1))
        elif j < len(y) and y[j] == STAR:
            found = go(i, j + 1)
            if found is None and i < len(x):
                found = _consume(x[i], go(i + 1, j))
        elif i < len(x) and j < len(y):
            char = _common_char(x[i], y[j])
            if char is not None:
                rest = go(i + 1, j + 1)
                found = None if rest is None else char + rest
        memo[key] = found
        return found

    found = go(0, 0)
    return "x" if found == "" else found  # only when both are all `*`, which match "x" too


def _consume(token: Token, rest: str | None) -> str | None:
    if rest is None or token == STAR:
        return rest
    char = _common_char(token, ANY)
    return None if char is None else char + rest


def _char_set(token: Token) -> tuple[bool, tuple[tuple[int, int], ...]]:
    """(negated, ranges) of a one-character token."""
    if token[0] == "c":
        return False, ((ord(token[1]), ord(token[1])),)
    if token[0] == "?":
        return True, ()
    return token[1], token[2]


def _common_char(s: Token, t: Token) -> str | None:
    """A character (not '/', not a control character) both tokens match, or None."""
    if s[0] == "c" and t[0] == "c":
        return s[1] if s[1] == t[1] else None
    s_neg, s_ranges = _char_set(s)
    t_neg, t_ranges = _char_set(t)
    everything = ((_FIRST_PRINTABLE, _LAST_CODE_POINT),)
    if not s_neg and not t_neg:
        allowed, excluded = _intersect(s_ranges, t_ranges), ()
    elif not s_neg:
        allowed, excluded = s_ranges, t_ranges
    elif not t_neg:
        allowed, excluded = t_ranges, s_ranges
    else:
        allowed, excluded = everything, _merge([*s_ranges, *t_ranges])
    return _first(_intersect(allowed, everything), _merge([*excluded, (_SLASH, _SLASH)]))


def _intersect(r: tuple[tuple[int, int], ...], s: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    out = []
    for lo, hi in r:
        for lo2, hi2 in s:
            if max(lo, lo2) <= min(hi, hi2):
                out.append((max(lo, lo2), min(hi, hi2)))
    return _merge(out)


def _first(allowed: tuple[tuple[int, int], ...], excluded: tuple[tuple[int, int], ...]) -> str | None:
    """A character in ``allowed`` outside ``excluded`` (both merged and sorted), 'a'-'z' if possible."""
    return _lowest(_intersect(allowed, _LOWERCASE), excluded) or _lowest(allowed, excluded)


def _lowest(allowed: tuple[tuple[int, int], ...], excluded: tuple[tuple[int, int], ...]) -> str | None:
    for lo, hi in allowed:
        point = lo
        for ex_lo, ex_hi in excluded:
            if ex_hi < point:
                continue
            if ex_lo > point:
                break
            point = ex_hi + 1
        if point <= hi:
            return chr(point)
    return None

"""Locks: all-or-nothing claims with fencing tokens, releases, renewals and transfers.

A lock row is one holder's claim on one normalised resource (`teamroom.paths`). It is live while
``expires_at > now``; an expired row is free, and the next claim that needs it takes it over (the
takeover names the previous holder in the audit log). Expired rows nobody takes over are swept
an hour later. Overlap cannot be decided in SQL, so SQL narrows the candidates by index (exact
paths and names by equality, globs by their literal prefix and the literal end of their last
segment) and `teamroom.paths` decides the rest.

No search reads more than it must: candidates come a page at a time and a refusal stops once it
has the conflicts it lists and counts (`MAX_CONFLICTS`, `MAX_COUNTED`), so a claim of ``**/*.py``
among 100,000 locks reads a few pages, not every ``.py`` lock. The claimed paths of one claim
share one search for the globs above them (ten files under ``src/`` meet each ``**/gen7/*.py``
lock once). A lock on a path is matched against a glob claim by the claim's regex on the path's
text, without parsing the path: no cache holds 100,000 of them. A listing under a broad glob
(``P/**``, ``P/**/*.py``) has SQL count and list what SQL can decide by itself (`_listed`).

Fencing: ``fence.token`` is the one counter of the store. Every grant takes the next value inside
the granting transaction, so tokens only grow; a holder that renews keeps its token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from teamroom import paths
from teamroom.errors import NotFound, NotOwner
from teamroom.paths import Resource
from teamroom.schemas.locks import ClaimResult, GrantedLock, LockConflict, LockEntry, LocksResult, ReleaseResult
from teamroom.store.tx import Tx, iso

EXPIRED_KEPT_MS = 60 * 60 * 1000  # how long an expired lock waits for a takeover before the sweep drops it
MAX_CONFLICTS = 50  # conflicts listed in one refusal
MAX_COUNTED = 200  # conflicts counted beyond those listed; a refusal stops looking there (200 means "or more")
PAGE = 1_024  # the most candidates the first query of a search reads (a refusal: what it needs); each page doubles

Hit = tuple[Resource, Any, str | None]  # (a resource looked for, a lock row overlapping it, a path both match)
Targets = Callable[[Any], list[tuple[int, int]]]  # candidate row -> [(index in wanted, search number)] it may overlap


# --- claim ----------------------------------------------------------------------------------


def claim(tx: Tx, agent: str, resources: list[str], mode: str, ttl_seconds: int, reason: str | None) -> ClaimResult:
    """Grant every resource to ``agent`` or none: refused if any overlaps a live lock of another holder."""
    tx.touch(agent)
    wanted = [paths.parse(r) for r in dict.fromkeys(resources)]
    hits = _in_the_way(tx, agent, wanted, mode, live_after=0, enough=MAX_CONFLICTS + MAX_COUNTED)
    live = [(res, row, example) for res, row, example in hits if row["expires_at"] > tx.now]
    if live:
        return ClaimResult(
            granted=False,
            conflicts=[_conflict(res, row, example) for res, row, example in live[:MAX_CONFLICTS]],
            more_conflicts=max(0, len(live) - MAX_CONFLICTS),
        )
    took_over = _take_over(tx, agent, [(res, row) for res, row, _ in hits])
    ttl_ms = ttl_seconds * 1000
    own = {row["resource"]: row for row in tx.all("locks.own", (agent, tx.array(r.text for r in wanted)))}
    renewing = {
        r.text for r in wanted if r.text in own and own[r.text]["expires_at"] > tx.now and own[r.text]["mode"] == mode
    }
    token = _next_tokens(tx, len(wanted) - len(renewing))
    granted = []
    for res in wanted:
        previous = own.get(res.text)
        if res.text in renewing:
            tx.run("locks.extend", (previous["id"], tx.now + ttl_ms, ttl_ms, reason))
            tx.event(agent, "lock_renew", res.text, token=previous["token"], ttl_seconds=ttl_seconds)
            granted.append(_granted(res, mode, previous["token"], tx.now + ttl_ms, renewed=True))
            continue
        if previous is not None:  # expired, or held in the other mode: a new grant replaces it
            tx.run("locks.delete", (previous["id"],))
        _insert(tx, agent, res, mode, token, reason, ttl_ms)
        tx.event(
            agent, "lock_claim", res.text, mode=mode, token=token, ttl_seconds=ttl_seconds, reason=reason,
            replaced_token=None if previous is None else previous["token"],
        )  # fmt: skip
        granted.append(_granted(res, mode, token, tx.now + ttl_ms, took_over_from=took_over.get(res.text)))
        token += 1
    return ClaimResult(granted=True, locks=granted)


def _insert(tx: Tx, holder: str, res: Resource, mode: str, token: int, reason: str | None, ttl_ms: int) -> None:
    row = (res.text, res.kind, res.prefix, res.suffix[::-1], holder, mode, token, reason, ttl_ms)
    tx.run("locks.insert", (*row, tx.now, tx.now + ttl_ms))


def clear_in(tx: Tx, agent: str, resources: list[str], mode: str) -> int:
    """Milliseconds until the first live lock in the way of this claim expires; 0 when none is. Reads only.

    Only the locks a refusal would list are looked at: waking at the first of their expiries is
    never later than the moment all of them are gone.
    """
    wanted = [paths.parse(r) for r in resources]
    live = _in_the_way(tx, agent, wanted, mode, live_after=tx.now, enough=MAX_CONFLICTS)
    return max(0, min(row["expires_at"] for _, row, _ in live) - tx.now) if live else 0


def _in_the_way(tx: Tx, agent: str, wanted: list[Resource], mode: str, *, live_after: int, enough: int) -> list[Hit]:
    """Locks of other holders overlapping ``wanted`` in ``mode``: exclusive is in the way of
    everything overlapping it, shared only of exclusive."""
    skip_mode = "shared" if mode == "shared" else ""
    return _overlapping(tx, wanted, skip_holder=agent, skip_mode=skip_mode, live_after=live_after, enough=enough)


def _take_over(tx: Tx, agent: str, expired: list[tuple[Resource, Any]]) -> dict[str, str]:
    """Drop the expired locks in the way, each recorded with its holder; {claimed resource: previous holder}."""
    took_over: dict[str, str] = {}
    done: set[int] = set()
    for res, row in expired:
        took_over.setdefault(res.text, row["holder"])
        if row["id"] in done:
            continue
        done.add(row["id"])
        tx.run("locks.delete", (row["id"],))
        tx.event(
            agent, "lock_takeover", row["resource"], previous_holder=row["holder"], previous_token=row["token"],
            expired_at=iso(row["expires_at"]), claimed=res.text,
        )  # fmt: skip
    return took_over


def _next_tokens(tx: Tx, count: int) -> int:
    """Reserve ``count`` fencing tokens; returns the first."""
    if count == 0:
        return 0
    last = tx.one("locks.next_tokens", (count,))[0]
    return last - count + 1


# --- finding overlapping locks --------------------------------------------------------------


def _overlapping(
    tx: Tx,
    wanted: list[Resource],
    *,
    skip_holder: str = "",
    holder: str | None = None,
    skip_mode: str = "",
    live_after: int = 0,
    enough: int | None = None,
    searches: Iterable[tuple[str, tuple[Any, ...], Targets]] | None = None,
) -> list[Hit]:
    """The locks overlapping each of ``wanted``, in the order of ``wanted``, then of the searches, then of the index.

    Locks of ``skip_holder`` or in ``skip_mode`` are left out, and those of anyone but ``holder``
    when given, and those expiring at or before ``live_after``. Stops once ``enough`` live ones
    (expiring after ``tx.now``) are found, so that what it returns is then only the start.
    ``searches`` replaces those of `_searches`.
    """
    found: list[list[list[Hit]]] = [[[] for _ in range(4)] for _ in wanted]  # [wanted][search]
    filters = (skip_holder, holder, skip_mode, live_after)
    live = 0
    for query, params, targets in _searches(tx, wanted) if searches is None else searches:
        for row in _pages(tx, query, filters, params, PAGE if enough is None else min(enough, PAGE)):
            for index, search in targets(row):
                res = wanted[index]
                hit, example = _overlap(res, row)
                if not hit:
                    continue
                found[index][search].append((res, row, example))
                live += row["expires_at"] > tx.now
                if enough is not None and live >= enough:
                    return _in_order(found)
    return _in_order(found)


def _in_order(found: list[list[list[Hit]]]) -> list[Hit]:
    return [hit for searches in found for hits in searches for hit in hits]


def _pages(tx: Tx, query: str, filters: tuple[Any, ...], params: tuple[Any, ...], first: int) -> Iterator[Any]:
    """The rows of a candidate query, ``first`` of them and then pages twice the last, each page
    starting after the last row of the one before, for a caller that may stop after any row."""
    after: tuple[Any, ...] = ("", "", 0)
    size = first
    while True:
        rows = tx.all(query, (*filters, *after, size, *params))
        yield from rows
        if len(rows) < size:
            return
        last = rows[-1]
        after, size = (last["prefix"], last["rsuffix"], last["id"]), size * 2


def _searches(tx: Tx, wanted: list[Resource]) -> Iterator[tuple[str, tuple[Any, ...], Targets]]:
    """The index searches that find every lock that could overlap one of ``wanted``; `_overlap` decides.

    A path can only overlap the same path, or a glob whose literal prefix is one of its ancestors
    and whose last segment's literal end is an end of the path's. A glob with prefix ``p`` can only
    overlap paths and globs at or under ``p``, or globs whose prefix is an ancestor of ``p``; and
    of those only the ones whose last segment's literal end and its own end one in the other
    (``*.md`` never meets ``*.py``). A name overlaps only itself. The globs above all claimed
    paths are one search: {(prefix, reversed end): the paths it could be above}.
    """
    above: dict[tuple[str, str], list[int]] = {}
    for index, res in enumerate(wanted):
        if res.kind in ("name", "path"):
            yield "locks.at", (res.kind, res.prefix, ""), _only(index, 0)  # a path's key: see paths.parse
        if res.kind == "path":
            for ancestor in paths.ancestors(res.prefix):
                for end in paths.suffixes(res.suffix):
                    above.setdefault((ancestor, end), []).append(index)
        if res.kind != "glob":
            continue
        end, ends = res.suffix[::-1], paths.suffixes(res.suffix)
        fewest = sum(segment != paths.GLOBSTAR for segment in res.segments)  # and the most, unless '**':
        most = None if paths.GLOBSTAR in res.segments else len(res.segments)
        if res.prefix:
            low, high = paths.under_range(res.prefix)
            ancestors, shorter = tx.array(paths.ancestors(res.prefix)), tx.array(ends[:-1])
            yield "locks.at", ("path", res.prefix, end), _only(index, 0)
            yield "locks.paths_under", (low, high, end, res.text, fewest, most), _only(index, 1)
            yield "locks.globs_above", (ancestors, shorter, end, _after_all_starting(end), 0), _only(index, 2)
            yield "locks.globs_under", (low, high, tx.array(ends), end, 0, fewest, most), _only(index, 3)
        else:
            yield "locks.paths_under", ("", None, end, res.text, fewest, most), _only(index, 1)
            yield "locks.globs_under", ("", None, tx.array(ends), end, 0, fewest, most), _only(index, 3)
    if above:
        plain = tx.array(dict.fromkeys(res.plain for res in wanted if res.kind == "path"))
        yield "locks.globs_over_paths", (tx.array(sorted(above)), plain), _paths_below(above)


def _only(index: int, search: int) -> Targets:
    target = [(index, search)]
    return lambda row: target


def _paths_below(above: dict[tuple[str, str], list[int]]) -> Targets:
    """The claimed paths a glob row is a candidate for, by its (prefix, reversed end)."""
    nobody: list[int] = []
    return lambda row: [(index, 1) for index in above.get((row["prefix"], row["rsuffix"]), nobody)]


def _after_all_starting(text: str) -> str | None:
    """The least text after every text that starts with ``text`` (code point order, which is byte
    order in UTF-8); None when there is none: ``text`` is empty, or only the last code points."""
    stripped = text.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    last = ord(stripped[-1]) + 1
    return stripped[:-1] + chr(0xE000 if 0xD800 <= last <= 0xDFFF else last)


def _overlap(res: Resource, row: Any) -> tuple[bool, str | None]:
    """Whether ``row``'s resource overlaps ``res``, and a path both match when they differ."""
    text, kind = row["resource"], row["kind"]
    if text == res.text:
        return True, None
    if res.kind == "name" or kind == "name" or (res.kind == "path" and kind == "path"):
        return False, None
    if kind == "path":  # a glob claim: its regex on the path's plain text, which is its text but for '[' and './'
        plain = paths.parse(text).plain if "[" in text or text.startswith("./") else text
        return (True, plain) if res.regex.fullmatch("/" + plain) else (False, None)  # type: ignore[union-attr]
    pattern = paths.parse(text)
    if res.kind == "path":
        return (True, res.plain) if pattern.regex.fullmatch("/" + res.plain) else (False, None)  # type: ignore[union-attr]
    example = paths.common_path(res, pattern)
    return example is not None, example


# --- release --------------------------------------------------------------------------------


def release(tx: Tx, agent: str, resources: list[str] | None) -> ReleaseResult:
    """Release the caller's locks on ``resources`` (all of them when None); all or nothing."""
    tx.touch(agent)
    if resources is None:
        rows = tx.all("locks.all_own", (agent,))
    else:
        wanted = list(dict.fromkeys(resources))
        own = {row["resource"]: row for row in tx.all("locks.own", (agent, tx.array(wanted)))}
        missing = [r for r in wanted if r not in own]
        if missing:
            _refuse_release(tx, agent, missing)
        rows = [own[r] for r in wanted]
    for row in rows:
        tx.run("locks.delete", (row["id"],))
        tx.event(agent, "lock_release", row["resource"], token=row["token"], expired=row["expires_at"] <= tx.now)
    return ReleaseResult(released=[row["resource"] for row in rows])


def _refuse_release(tx: Tx, agent: str, missing: list[str]) -> None:
    other = tx.one("locks.held_elsewhere", (tx.array(missing), agent, tx.now))
    if other is not None:
        raise NotOwner(
            f"{other['resource']!r} is locked by {other['holder']!r} (token {other['token']}, until"
            f" {iso(other['expires_at'])}), not by {agent!r}; nothing was released. Ask its holder, or claim_lock"
            " with wait_seconds to get it when it is free"
        )
    held = [row["resource"] for row in held_by(tx, agent)]
    you_hold = f"you hold: {', '.join(held[:20])}{' ...' if len(held) > 20 else ''}" if held else "you hold no locks"
    raise NotFound(
        f"nobody holds a lock on {', '.join(repr(m) for m in missing[:5])}; nothing was released; {you_hold}"
        " (release_lock without resources releases all of yours)"
    )


# --- reading --------------------------------------------------------------------------------


def list_locks(tx: Tx, agent: str | None, resource: str | None, holder: str | None, limit: int | None) -> LocksResult:
    """Live locks overlapping ``resource`` (or all), of ``holder`` (or anyone), by resource then token."""
    if agent is not None:
        tx.touch(agent)
    most = -1 if limit is None else limit
    if resource is None and holder is None:
        rows = tx.all("locks.live", (tx.now, most))
        total = tx.one("locks.live_count", (tx.now,))[0]
    elif resource is None:
        rows = tx.all("locks.held_by", (holder, tx.now, most))
        total = tx.one("locks.held_by_count", (holder, tx.now))[0]
    elif holder is not None and tx.one("locks.held_by_count", (holder, tx.now))[0] <= PAGE:
        res = paths.parse(resource)  # a holder's own locks are fewer than the candidates: decide those
        found = [row for row in tx.all("locks.held_by", (holder, tx.now, -1)) if _overlap(res, row)[0]]
        rows, total = found if limit is None else found[:limit], len(found)
    else:
        rows, total = _listed(tx, paths.parse(resource), holder, most)
    return LocksResult(locks=[entry(row) for row in rows], more=total - len(rows))


def _listed(tx: Tx, res: Resource, holder: str | None, most: int) -> tuple[list[Any], int]:
    """The first ``most`` (-1: all) live locks overlapping ``res`` by resource then token, and how many there are.

    The broad globs have SQL count and list most of what they overlap: under ``P/**`` (or ``**``)
    every path and every glob without a class (which could match nothing); under ``P/**/*S`` every
    path below ``P`` whose name ends with ``S``. The rules decide the rest, as for any resource.
    """
    shape, counted, first, searches = _shape(res), 0, [], None
    if shape == "under":
        prefix = res.prefix or None
        low, high = (res.prefix, paths.under_range(res.prefix)[1]) if prefix else ("", None)
        first = tx.all("locks.live_under", (tx.now, holder, prefix, low, high, most))
        counted = tx.one("locks.live_under_count", (tx.now, holder, prefix, low, high))[0]
        searches = _odd(tx, res)
    elif shape == "ending":
        low, high = paths.under_range(res.prefix) if res.prefix else ("", None)
        ending = (tx.now, holder, low, high, res.suffix[::-1])
        first = tx.all("locks.live_paths_ending", (*ending, most))
        counted = tx.one("locks.live_paths_ending_count", ending)[0]
        searches = [search for search in _searches(tx, [res]) if search[0] != "locks.paths_under"]
    found = [row for _, row, _ in _overlapping(tx, [res], holder=holder, live_after=tx.now, searches=searches)]
    rows = sorted([*first, *found], key=lambda row: (row["resource"], row["token"]))
    return rows if most < 0 else rows[:most], counted + len(found)


def _shape(res: Resource) -> str | None:
    """Which broad glob ``res`` is: "under" (``P/**``, ``**``), "ending" (``P/**/*S``, ``**/*S``) or neither."""
    if res.kind != "glob":
        return None
    fixed = len(res.prefix.removeprefix("./").split("/")) if res.prefix else 0  # the prefix's segments
    rest = res.segments[fixed:]
    if rest == (paths.GLOBSTAR,):
        return "under"
    if len(rest) == 2 and rest[0] == paths.GLOBSTAR and rest[1][:1] == (paths.STAR,):
        return "ending" if all(token[0] == "c" for token in rest[1][1:]) else None
    return None


def _odd(tx: Tx, res: Resource) -> list[tuple[str, tuple[Any, ...], Targets]]:
    """For `_listed` under ``P/**``: the searches for what `locks.live_under` leaves to the rules."""
    if not res.prefix:
        return [("locks.globs_under", ("", None, tx.array([""]), "", 1, 0, None), _only(0, 3))]
    under = res.prefix + "/"

    def above(row: Any) -> list[tuple[int, int]]:  # globs with prefix P are under P too: counted unless odd
        counted = "[" not in row["resource"] and row["resource"].startswith(under)
        return [] if counted else [(0, 2)]

    def escaped(row: Any) -> list[tuple[int, int]]:  # the path P written otherwise ('a/b[ ]' for 'a/b '): missed
        return [] if row["resource"] == res.prefix else [(0, 0)]

    low, high = paths.under_range(res.prefix)
    ancestors = tx.array(paths.ancestors(res.prefix))
    return [
        ("locks.at", ("path", res.prefix, ""), escaped),
        ("locks.globs_above", (ancestors, tx.array([]), "", None, 0), above),
        ("locks.globs_under", (low, high, tx.array([""]), "", 1, 0, None), _only(0, 3)),
    ]


# --- for heartbeats, handoffs and housekeeping ----------------------------------------------


def held_by(tx: Tx, holder: str) -> list[dict[str, Any]]:
    """The live locks of ``holder``, by resource, as dicts with the columns of ``locks``.

    Keys: id, resource, kind, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
    (times in ms). ``holder`` may be an agent or a parking name such as ``handoff:h12``.
    """
    return [dict(row) for row in tx.all("locks.held_by", (holder, tx.now, -1))]


def renew(tx: Tx, holder: str, resources: Iterable[str] | None = None) -> tuple[int, list[str]]:
    """Extend live locks of ``holder`` (all, or those of ``resources``) by their own TTL from now.

    Returns (how many were renewed, every resource ``holder`` holds live). Tokens do not change.
    This is the lock part of ``heartbeat``.
    """
    chosen = None if resources is None else list(resources)
    if chosen == []:
        return 0, [row["resource"] for row in held_by(tx, holder)]
    renewed = tx.all("locks.renew", (tx.now, holder, None if chosen is None else tx.array(chosen)))
    if renewed:
        tx.event(holder, "locks_renewed", holder, count=len(renewed))
    held = renewed if chosen is None else held_by(tx, holder)
    return len(renewed), sorted(row["resource"] for row in held)


def reassign(
    tx: Tx,
    from_holder: str,
    to_holder: str,
    resources: Iterable[str] | None = None,
    expires_at: int | None = None,
    *,
    actor: str | None = None,
    fence: bool = False,
) -> list[dict[str, Any]]:
    """Move live locks from one holder to another in this transaction, keeping their tokens (``fence``:
    each gets a new, greater token instead, so a late write of the previous holder is fenced off).

    Contract (for handoffs): moves every live lock of ``from_holder`` (or only those whose normalised
    resource is in ``resources``; others are ignored) to ``to_holder``, which may be an agent or a
    parking name with a ':' such as ``handoff:h12`` (no agent can be named so, so nobody can claim
    or release a parked lock, and every claim overlapping it conflicts). Expired locks stay where
    they are: they are free. ``expires_at`` (ms) sets the moved locks' expiry, e.g. ``tx.now +
    86_400_000`` to park them for a day; None keeps each one's own. To restart each lock's own TTL
    from now after moving, call ``renew(tx, to_holder)``. Mode, reason and ttl are kept.

    If ``to_holder`` already holds a lock on the same resource, the two merge into one: the higher
    token, the later expiry, and exclusive if either was. Each move is one ``lock_transfer`` event
    recorded as done by ``actor`` (default ``from_holder``), with ``previous_token`` when fenced.
    Returns the moved locks as `held_by` rows (after the move).
    """
    moving = held_by(tx, from_holder)
    if resources is not None:
        chosen = set(resources)
        moving = [row for row in moving if row["resource"] in chosen]
    moved = []
    for row in moving:
        new_expiry = row["expires_at"] if expires_at is None else expires_at
        mine = tx.one("locks.on", (to_holder, row["resource"]))
        token, mode = row["token"], row["mode"]
        if mine is not None:
            tx.run("locks.delete", (mine["id"],))
            if mine["expires_at"] > tx.now:
                token = max(token, mine["token"])
                mode = "exclusive" if "exclusive" in (mode, mine["mode"]) else mode
                new_expiry = max(new_expiry, mine["expires_at"])
        fenced = {}
        if fence:
            fenced, token = {"previous_token": row["token"]}, _next_tokens(tx, 1)
        tx.run("locks.move", (row["id"], to_holder, token, mode, new_expiry))
        tx.event(
            actor or from_holder, "lock_transfer", row["resource"], from_holder=from_holder, to_holder=to_holder,
            token=token, expires_at=iso(new_expiry), **fenced,
        )  # fmt: skip
        moved.append({**row, "holder": to_holder, "token": token, "mode": mode, "expires_at": new_expiry})
    return moved


def sweep(tx: Tx) -> None:
    """Drop locks expired for over an hour that nobody took over, each recorded (store housekeeping)."""
    for row in tx.all("locks.sweep", (tx.now - EXPIRED_KEPT_MS,)):
        tx.event(
            None,
            "lock_expired",
            row["resource"],
            holder=row["holder"],
            token=row["token"],
            expired_at=iso(row["expires_at"]),
        )


# --- rows to schemas ------------------------------------------------------------------------


def _granted(res: Resource, mode: str, token: int, expires_at: int, **extra: Any) -> GrantedLock:
    return GrantedLock(resource=res.text, mode=mode, token=token, expires_at=iso(expires_at), **extra)


def _conflict(res: Resource, row: Any, example: str | None) -> LockConflict:
    return LockConflict(
        resource=row["resource"],
        held_by=row["holder"],
        mode=row["mode"],
        reason=row["reason"],
        expires_at=iso(row["expires_at"]),
        requested=res.text,
        example=example,
    )


def entry(row: Any) -> LockEntry:
    """A lock row (or a `held_by` dict) as the schema the tools return."""
    return LockEntry(
        resource=row["resource"],
        holder=row["holder"],
        mode=row["mode"],
        token=row["token"],
        reason=row["reason"],
        acquired_at=iso(row["acquired_at"]),
        expires_at=iso(row["expires_at"]),
    )

"""Locks: all-or-nothing claims with fencing tokens, releases, renewals and transfers.

A lock row is one holder's claim on one normalised resource (`teamroom.paths`). It is live while
``expires_at > now``; an expired row is free, and the next claim that needs it takes it over (the
takeover names the previous holder in the audit log). Expired rows nobody takes over are swept
an hour later. Overlap cannot be decided in SQL, so SQL narrows the candidates by index (exact
paths and names by equality, globs by their literal prefix and the literal end of their last
segment) and `teamroom.paths` decides the rest.

Fencing: ``fence.token`` is the one counter of the store. Every grant takes the next value inside
the granting transaction, so tokens only grow; a holder that renews keeps its token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from teamroom import paths
from teamroom.errors import NotFound, NotOwner
from teamroom.paths import Resource
from teamroom.schemas.locks import ClaimResult, GrantedLock, LockConflict, LockEntry, LocksResult, ReleaseResult
from teamroom.store.tx import Tx, iso

EXPIRED_KEPT_MS = 60 * 60 * 1000  # how long an expired lock waits for a takeover before the sweep drops it
MAX_CONFLICTS = 50  # conflicts listed in one refusal; the rest are counted

_COLUMNS = "id, resource, kind, holder, mode, token, reason, ttl_ms, acquired_at, expires_at"


# --- claim ----------------------------------------------------------------------------------


def claim(tx: Tx, agent: str, resources: list[str], mode: str, ttl_seconds: int, reason: str | None) -> ClaimResult:
    """Grant every resource to ``agent`` or none: refused if any overlaps a live lock of another holder."""
    tx.touch(agent)
    wanted = [paths.parse(r) for r in dict.fromkeys(resources)]
    live, expired = _blockers(tx, agent, wanted, mode)
    if live:
        return ClaimResult(
            granted=False,
            conflicts=[_conflict(res, row, example) for res, row, example in live[:MAX_CONFLICTS]],
            more_conflicts=max(0, len(live) - MAX_CONFLICTS),
        )
    took_over = _take_over(tx, agent, expired)
    ttl_ms = ttl_seconds * 1000
    own = {
        row["resource"]: row
        for row in tx.all(
            f"SELECT {_COLUMNS} FROM locks WHERE holder = ? AND resource IN ({_marks(wanted)})",
            (agent, *(r.text for r in wanted)),
        )
    }
    renewing = {
        r.text for r in wanted if r.text in own and own[r.text]["expires_at"] > tx.now and own[r.text]["mode"] == mode
    }
    token = _next_tokens(tx, len(wanted) - len(renewing))
    granted = []
    for res in wanted:
        previous = own.get(res.text)
        if res.text in renewing:
            tx.execute(
                "UPDATE locks SET expires_at = ?, ttl_ms = ?, reason = COALESCE(?, reason) WHERE id = ?",
                (tx.now + ttl_ms, ttl_ms, reason, previous["id"]),
            )
            tx.event(agent, "lock_renew", res.text, token=previous["token"], ttl_seconds=ttl_seconds)
            granted.append(_granted(res, mode, previous["token"], tx.now + ttl_ms, renewed=True))
            continue
        if previous is not None:  # expired, or held in the other mode: a new grant replaces it
            tx.execute("DELETE FROM locks WHERE id = ?", (previous["id"],))
        _insert(tx, agent, res, mode, token, reason, ttl_ms)
        tx.event(
            agent, "lock_claim", res.text, mode=mode, token=token, ttl_seconds=ttl_seconds, reason=reason,
            replaced_token=None if previous is None else previous["token"],
        )  # fmt: skip
        granted.append(_granted(res, mode, token, tx.now + ttl_ms, took_over_from=took_over.get(res.text)))
        token += 1
    return ClaimResult(granted=True, locks=granted)


def _insert(tx: Tx, holder: str, res: Resource, mode: str, token: int, reason: str | None, ttl_ms: int) -> None:
    tx.execute(
        "INSERT INTO locks (resource, kind, prefix, rsuffix, holder, mode, token, reason, ttl_ms, acquired_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            res.text,
            res.kind,
            res.prefix,
            res.suffix[::-1],
            holder,
            mode,
            token,
            reason,
            ttl_ms,
            tx.now,
            tx.now + ttl_ms,
        ),
    )


def clear_in(tx: Tx, agent: str, resources: list[str], mode: str) -> int:
    """Milliseconds until the first live lock in the way of this claim expires; 0 when none is. Reads only."""
    live, _ = _blockers(tx, agent, [paths.parse(r) for r in resources], mode, live_only=True)
    return max(0, min(row["expires_at"] for _, row, _ in live) - tx.now) if live else 0


def _blockers(
    tx: Tx, agent: str, wanted: list[Resource], mode: str, *, live_only: bool = False
) -> tuple[list[tuple[Resource, Any, str | None]], list[tuple[Resource, Any]]]:
    """Locks of other holders in the way of ``wanted`` in ``mode``: (live ones, expired ones).

    Exclusive is in the way of everything overlapping; shared only of exclusive.
    """
    live: list[tuple[Resource, Any, str | None]] = []
    expired: list[tuple[Resource, Any]] = []
    for res in wanted:
        rows = _candidates(tx, res, exclude_holder=agent, exclusive_only=mode == "shared", live_only=live_only)
        for row in rows:
            hit, example = _overlap(res, row)
            if not hit:
                continue
            if row["expires_at"] > tx.now:
                live.append((res, row, example))
            else:
                expired.append((res, row))
    return live, expired


def _take_over(tx: Tx, agent: str, expired: list[tuple[Resource, Any]]) -> dict[str, str]:
    """Drop the expired locks in the way, each recorded with its holder; {claimed resource: previous holder}."""
    took_over: dict[str, str] = {}
    done: set[int] = set()
    for res, row in expired:
        took_over.setdefault(res.text, row["holder"])
        if row["id"] in done:
            continue
        done.add(row["id"])
        tx.execute("DELETE FROM locks WHERE id = ?", (row["id"],))
        tx.event(
            agent, "lock_takeover", row["resource"], previous_holder=row["holder"], previous_token=row["token"],
            expired_at=iso(row["expires_at"]), claimed=res.text,
        )  # fmt: skip
    return took_over


def _next_tokens(tx: Tx, count: int) -> int:
    """Reserve ``count`` fencing tokens; returns the first."""
    if count == 0:
        return 0
    last = tx.one("UPDATE fence SET token = token + ? WHERE id = 1 RETURNING token", (count,))[0]
    return last - count + 1


# --- finding overlapping locks --------------------------------------------------------------


def _candidates(
    tx: Tx, res: Resource, *, exclude_holder: str | None, exclusive_only: bool, live_only: bool
) -> list[Any]:
    """Every lock that could overlap ``res``, found by index; `_overlap` decides.

    A path can only overlap the same path, or a glob whose literal prefix is one of its ancestors
    and whose last segment's literal end is an end of the path's. A glob with prefix ``p`` can only
    overlap paths and globs at or under ``p``, or globs whose prefix is an ancestor of ``p``; and
    of those only the ones whose last segment's literal end and its own end one in the other
    (``*.md`` never meets ``*.py``). A name overlaps only itself.
    """
    where: list[tuple[str, list[Any]]] = []
    if res.kind in ("name", "path"):
        where.append(("kind = ? AND prefix = ?", [res.kind, res.text]))
    if res.kind == "path":
        anc, ends = paths.ancestors(res.text), paths.suffixes(res.suffix)
        where.append((f"kind = 'glob' AND prefix IN ({_marks(anc)}) AND rsuffix IN ({_marks(ends)})", anc + ends))
    if res.kind == "glob":
        end, ends = res.suffix[::-1], paths.suffixes(res.suffix)
        path_end = (" AND substr(rsuffix, 1, ?) = ?", [len(end), end]) if end else ("", [])
        glob_end = (f" AND (rsuffix IN ({_marks(ends)}) OR substr(rsuffix, 1, ?) = ?)", [*ends, len(end), end])
        if res.prefix:
            low, high = paths.under_range(res.prefix)
            anc = paths.ancestors(res.prefix)
            where.append(("kind = 'path' AND prefix = ?" + path_end[0], [res.prefix, *path_end[1]]))
            where.append(("kind = 'path' AND prefix >= ? AND prefix < ?" + path_end[0], [low, high, *path_end[1]]))
            where.append((f"kind = 'glob' AND prefix IN ({_marks(anc)})" + glob_end[0], [*anc, *glob_end[1]]))
            where.append(("kind = 'glob' AND prefix >= ? AND prefix < ?" + glob_end[0], [low, high, *glob_end[1]]))
        else:
            where.append(("kind = 'path'" + path_end[0], path_end[1]))
            where.append(("kind = 'glob'" + glob_end[0], glob_end[1]))
    extra, extra_params = "", []
    if exclude_holder is not None:
        extra, extra_params = extra + " AND holder != ?", [*extra_params, exclude_holder]
    if exclusive_only:
        extra += " AND mode = 'exclusive'"
    if live_only:
        extra, extra_params = extra + " AND expires_at > ?", [*extra_params, tx.now]
    sql = " UNION ALL ".join(f"SELECT {_COLUMNS} FROM locks WHERE {cond}{extra}" for cond, _ in where)
    params = [p for _, cond_params in where for p in (*cond_params, *extra_params)]
    return tx.all(sql, params)


def _overlap(res: Resource, row: Any) -> tuple[bool, str | None]:
    """Whether ``row``'s resource overlaps ``res``, and a path both match when they differ."""
    if row["resource"] == res.text:
        return True, None
    if res.kind == "name" or row["kind"] == "name" or (res.kind == "path" and row["kind"] == "path"):
        return False, None
    example = paths.common_path(res, paths.parse(row["resource"]))
    return example is not None, example


# --- release --------------------------------------------------------------------------------


def release(tx: Tx, agent: str, resources: list[str] | None) -> ReleaseResult:
    """Release the caller's locks on ``resources`` (all of them when None); all or nothing."""
    tx.touch(agent)
    if resources is None:
        rows = tx.all(f"SELECT {_COLUMNS} FROM locks WHERE holder = ? ORDER BY resource", (agent,))
    else:
        wanted = list(dict.fromkeys(resources))
        own = {
            row["resource"]: row
            for row in tx.all(
                f"SELECT {_COLUMNS} FROM locks WHERE holder = ? AND resource IN ({_marks(wanted)})", (agent, *wanted)
            )
        }
        missing = [r for r in wanted if r not in own]
        if missing:
            _refuse_release(tx, agent, missing)
        rows = [own[r] for r in wanted]
    for row in rows:
        tx.execute("DELETE FROM locks WHERE id = ?", (row["id"],))
        tx.event(agent, "lock_release", row["resource"], token=row["token"], expired=row["expires_at"] <= tx.now)
    return ReleaseResult(released=[row["resource"] for row in rows])


def _refuse_release(tx: Tx, agent: str, missing: list[str]) -> None:
    other = tx.one(
        f"SELECT resource, holder, token, expires_at FROM locks WHERE resource IN ({_marks(missing)})"
        " AND holder != ? AND expires_at > ? ORDER BY token LIMIT 1",
        (*missing, agent, tx.now),
    )
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
    if resource is None:
        holder_sql, params = ("", []) if holder is None else (" AND holder = ?", [holder])
        rows = tx.all(
            f"SELECT {_COLUMNS} FROM locks WHERE expires_at > ?{holder_sql} ORDER BY resource, token"
            + ("" if limit is None else " LIMIT ?"),
            (tx.now, *params, *([] if limit is None else [limit])),
        )
        total = tx.one(f"SELECT COUNT(*) FROM locks WHERE expires_at > ?{holder_sql}", (tx.now, *params))[0]
    else:
        res = paths.parse(resource)
        rows = [
            row
            for row in _candidates(tx, res, exclude_holder=None, exclusive_only=False, live_only=True)
            if (holder is None or row["holder"] == holder) and _overlap(res, row)[0]
        ]
        rows.sort(key=lambda row: (row["resource"], row["token"]))
        total = len(rows)
        rows = rows if limit is None else rows[:limit]
    return LocksResult(locks=[entry(row) for row in rows], more=total - len(rows))


def holders(tx: Tx) -> dict[str, list[str]]:
    """{holder: resources} of every live lock; the agents list shows it."""
    held: dict[str, list[str]] = {}
    for row in tx.all("SELECT holder, resource FROM locks WHERE expires_at > ? ORDER BY holder, resource", (tx.now,)):
        held.setdefault(row["holder"], []).append(row["resource"])
    return held


# --- for heartbeats, handoffs and housekeeping ----------------------------------------------


def held_by(tx: Tx, holder: str) -> list[dict[str, Any]]:
    """The live locks of ``holder``, by resource, as dicts with the columns of ``locks``.

    Keys: id, resource, kind, holder, mode, token, reason, ttl_ms, acquired_at, expires_at
    (times in ms). ``holder`` may be an agent or a parking name such as ``handoff:h12``.
    """
    return [
        dict(row)
        for row in tx.all(
            f"SELECT {_COLUMNS} FROM locks WHERE holder = ? AND expires_at > ? ORDER BY resource", (holder, tx.now)
        )
    ]


def renew(tx: Tx, holder: str, resources: Iterable[str] | None = None) -> tuple[int, list[str]]:
    """Extend live locks of ``holder`` (all, or those of ``resources``) by their own TTL from now.

    Returns (how many were renewed, every resource ``holder`` holds live). Tokens do not change.
    This is the lock part of ``heartbeat``.
    """
    sql, params = "", []
    if resources is not None:
        chosen = list(resources)
        if not chosen:
            return 0, [row["resource"] for row in held_by(tx, holder)]
        sql, params = f" AND resource IN ({_marks(chosen)})", chosen
    renewed = tx.all(
        f"UPDATE locks SET expires_at = ? + ttl_ms WHERE holder = ? AND expires_at > ?{sql} RETURNING resource",
        (tx.now, holder, tx.now, *params),
    )
    if renewed:
        tx.event(holder, "locks_renewed", holder, count=len(renewed))
    held = renewed if resources is None else held_by(tx, holder)
    return len(renewed), sorted(row["resource"] for row in held)


def reassign(
    tx: Tx,
    from_holder: str,
    to_holder: str,
    resources: Iterable[str] | None = None,
    expires_at: int | None = None,
    *,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Move live locks from one holder to another in this transaction, keeping their tokens.

    Contract (for handoffs): moves every live lock of ``from_holder`` (or only those whose normalised
    resource is in ``resources``; others are ignored) to ``to_holder``, which may be an agent or a
    parking name with a ':' such as ``handoff:h12`` (no agent can be named so, so nobody can claim
    or release a parked lock, and every claim overlapping it conflicts). Expired locks stay where
    they are: they are free. ``expires_at`` (ms) sets the moved locks' expiry, e.g. ``tx.now +
    86_400_000`` to park them for a day; None keeps each one's own. To restart each lock's own TTL
    from now after moving, call ``renew(tx, to_holder)``. Mode, reason and ttl are kept.

    If ``to_holder`` already holds a lock on the same resource, the two merge into one: the higher
    token, the later expiry, and exclusive if either was. Each move is one ``lock_transfer`` event
    recorded as done by ``actor`` (default ``from_holder``). Returns the moved locks as
    `held_by` rows (after the move).
    """
    moving = held_by(tx, from_holder)
    if resources is not None:
        chosen = set(resources)
        moving = [row for row in moving if row["resource"] in chosen]
    moved = []
    for row in moving:
        new_expiry = row["expires_at"] if expires_at is None else expires_at
        mine = tx.one(
            "SELECT id, token, mode, expires_at FROM locks WHERE holder = ? AND resource = ?",
            (to_holder, row["resource"]),
        )
        token, mode = row["token"], row["mode"]
        if mine is not None:
            tx.execute("DELETE FROM locks WHERE id = ?", (mine["id"],))
            if mine["expires_at"] > tx.now:
                token = max(token, mine["token"])
                mode = "exclusive" if "exclusive" in (mode, mine["mode"]) else mode
                new_expiry = max(new_expiry, mine["expires_at"])
        tx.execute(
            "UPDATE locks SET holder = ?, token = ?, mode = ?, expires_at = ? WHERE id = ?",
            (to_holder, token, mode, new_expiry, row["id"]),
        )
        tx.event(
            actor or from_holder, "lock_transfer", row["resource"], from_holder=from_holder, to_holder=to_holder,
            token=token, expires_at=iso(new_expiry),
        )  # fmt: skip
        moved.append({**row, "holder": to_holder, "token": token, "mode": mode, "expires_at": new_expiry})
    return moved


def sweep(tx: Tx) -> None:
    """Drop locks expired for over an hour that nobody took over, each recorded (store housekeeping)."""
    for row in tx.all(
        "DELETE FROM locks WHERE expires_at <= ? RETURNING resource, holder, token, expires_at",
        (tx.now - EXPIRED_KEPT_MS,),
    ):
        tx.event(
            None,
            "lock_expired",
            row["resource"],
            holder=row["holder"],
            token=row["token"],
            expired_at=iso(row["expires_at"]),
        )


# --- rows to schemas ------------------------------------------------------------------------


def _marks(values: list[Any]) -> str:
    return ", ".join("?" * len(values))


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

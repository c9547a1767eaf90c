"""Operations (SPEC.md §9): retention, stats, dead letters and the operator's verbs.

Retention is many short transactions, not one long one: each function here that trims does one
page of the oldest rows and says where it stopped, and `Store.gc` calls it again from there, so an
agent's call waits at most for one page. Messages and events are walked in id order, the order they
were written, and a walk stops at the first row that is not old enough.

The operator's verbs (force-release a lock, redrive dead letters, forget an agent) act for a human:
each audit event they write names the one who did it (``by``).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from teamroom import paths
from teamroom.errors import Conflict, NotFound
from teamroom.schemas.ops import (
    AgentStats,
    DeadLetter,
    DeadResult,
    EventStats,
    ForceReleaseResult,
    ForgetResult,
    Redriven,
    RedriveResult,
    ReleasedLock,
    StatsResult,
)
from teamroom.store.rules import agents, locks, messages
from teamroom.store.tx import Tx, iso

DAY_MS = 86_400_000


class Page(NamedTuple):
    """What one page of a trim did, and where the next page starts."""

    deliveries: int
    messages: int
    last_id: int  # the id the next page starts after
    more: bool  # whether a next page may find more


# --- retention ------------------------------------------------------------------------------


def _old(rows: list[Any], column: str, cutoff: int) -> list[Any]:
    """The leading rows written before ``cutoff``: the walk stops at the first that is not."""
    old = []
    for row in rows:
        if row[column] >= cutoff:
            break
        old.append(row)
    return old


def trim_messages(tx: Tx, retention_ms: int, after: int, limit: int, dry_run: bool) -> Page:
    """Among the ``limit`` oldest messages after id ``after``: delete their deliveries finished before the
    cutoff, then those messages left with no delivery (a handoff's own message stays). Counts only when
    ``dry_run``."""
    cutoff = tx.now - retention_ms
    rows = tx.all("ops.messages_from", (after, limit))
    old = [row["id"] for row in _old(rows, "sent_at", cutoff)]
    if not old:
        return Page(0, 0, after, False)
    ids = tx.array(old)
    if dry_run:
        deliveries = tx.one("ops.count_finished_deliveries", (ids, cutoff))[0]
        gone = tx.one("ops.count_finished_messages", (ids, cutoff))[0]
    else:
        deliveries = tx.run("ops.drop_finished_deliveries", (ids, cutoff))
        gone = tx.run("ops.drop_finished_messages", (ids,))
    return Page(deliveries, gone, old[-1], len(old) == limit)


def old_events(tx: Tx, retention_ms: int, after: int, limit: int, whole: bool) -> tuple[list[dict[str, Any]], bool]:
    """The oldest events after id ``after`` that happened before the cutoff, at most ``limit``, and
    whether more may follow; ``whole`` rows for the archive, else ids and times only."""
    rows = tx.all("ops.events_from" if whole else "ops.event_times_from", (after, limit))
    old = _old(rows, "at", tx.now - retention_ms)
    return [dict(row) for row in old], len(old) == limit


def trim_events(tx: Tx, ids: list[int]) -> int:
    """Delete these events, which the archive holds now (the store refuses to delete any other)."""
    tx.run("ops.mark_archived", (max(ids),))
    return tx.run("ops.drop_events", (tx.array(ids),))


def archive_lines(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Events as archive lines, by the month file they go to: the JSON of ``teamroom log --json``.

    Written out by hand (~1 us an event rather than ~7 through a dict, a datetime and json.dumps each):
    gc archives every event the store ever records. The stored data is JSON already and goes in as it is.
    """
    lines: dict[str, list[str]] = {}
    seconds: dict[int, str] = {}  # an event's second, as ISO text: the events of a page share few
    for row in rows:
        at = row["at"]
        second = seconds.get(at // 1000)
        if second is None:
            second = seconds[at // 1000] = iso(at - at % 1000)[:19]
        line = (
            f'{{"id":{row["id"]},"at":"{second}.{at % 1000:03d}Z","agent":{_text(row["agent"])},'
            f'"kind":{_text(row["kind"])},"subject":{_text(row["subject"])},"data":{row["data"] or "null"}}}'
        )
        lines.setdefault(f"events-{second[:7]}.jsonl", []).append(line)
    return lines


_text = json.JSONEncoder(ensure_ascii=False).encode  # a str (or None) as JSON


def record_gc(tx: Tx, by: str, summary: dict[str, Any]) -> None:
    tx.event(None, "gc", None, by=by, **summary)


# --- stats ----------------------------------------------------------------------------------


def stats(tx: Tx) -> StatsResult:
    """Queues per agent (and per recipient no agent record names any more), locks, totals and the log's span."""
    queues = {row["recipient"]: row for row in tx.all("ops.queues", (tx.now,))}
    dead = {row["recipient"]: row["dead"] for row in tx.all("ops.dead_by_recipient")}
    held = {row["holder"]: row["locks"] for row in tx.all("ops.locks_by_holder", (tx.now,))}
    oldest = [row["oldest_message"] for row in queues.values() if row["oldest_message"] is not None]
    sent_at = {row["id"]: row["sent_at"] for row in tx.all("ops.sent_at", (tx.array(oldest),))} if oldest else {}
    known = {row["name"]: row for row in tx.all("ops.agents")}
    entries = []
    for name in sorted(known.keys() | queues.keys() | dead.keys()):
        agent, queue = known.get(name), queues.get(name)
        first = None if queue is None else sent_at.get(queue["oldest_message"])
        entries.append(
            AgentStats(
                name=name,
                known=agent is not None,
                role=agent and agent["role"],
                liveness=agent and agents.liveness(tx.now, agent["last_seen"]),
                queued=queue["queued"] if queue else 0,
                leased=queue["leased"] if queue else 0,
                dead=dead.get(name, 0),
                oldest_queued_at=None if first is None else iso(first),
                oldest_queued_seconds=None if first is None else (tx.now - first) / 1000,
                locks=held.get(name, 0),
            )
        )
    span = tx.one("ops.event_span")
    first_at = None if span["first"] is None else tx.one("ops.event_at", (span["first"],))[0]
    return StatsResult(
        agents=entries,
        deliveries={row["state"]: row["n"] for row in tx.all("ops.delivery_states")},
        messages=tx.one("ops.message_count")[0],
        locks=sum(held.values()),
        events=EventStats(
            count=span["n"],
            first_id=span["first"],
            last_id=span["last"],
            oldest_at=None if first_at is None else iso(first_at),
            archived_through=tx.one("ops.archived_through")[0],
        ),
    )


# --- dead letters -----------------------------------------------------------------------------


def dead_letters(tx: Tx, agent: str | None, limit: int) -> DeadResult:
    rows = tx.all("ops.dead_letters", (agent, limit))
    return DeadResult(
        dead=[
            DeadLetter(
                message_id=messages.message_ref(r["message_id"]),
                to=r["recipient"],
                from_=r["sender"],
                subject=r["subject"],
                kind=r["kind"],
                attempts=r["attempt"],
                max_attempts=r["max_attempts"],
                reason=r["reason"],
                died_at=iso(r["updated_at"]),
                sent_at=iso(r["sent_at"]),
                thread_id=r["thread_id"],
            )
            for r in rows
        ],
        total=tx.one("ops.dead_count", (agent,))[0],
    )


def redrive(tx: Tx, by: str, message: str | None, recipient: str | None) -> RedriveResult:
    """Queue dead deliveries again (all, or those of ``message``, to ``recipient``), attempts from 0.

    The sender's delivery_failed stays where it is: it was true when sent. A TTL that has passed is
    dropped (the operator's redrive is the newer decision). Deliveries to a recipient no agent record
    names any more (forgotten) are skipped and listed.
    """
    message_id = None if message is None else messages.parse_message_ref(message)
    if message_id is not None and tx.one("ops.message", (message_id,)) is None:
        raise NotFound(f"no message {message!r} (retention may have deleted it); teamroom dead lists the dead letters")
    rows = tx.all("ops.dead_of", (message_id, recipient))
    if message_id is not None and not rows:
        states = ", ".join(f"{r['recipient']} {r['state']}" for r in tx.all("ops.deliveries_of", (message_id,)))
        to = f" to {recipient}" if recipient else ""
        raise NotFound(f"{message} has no dead delivery{to}; its deliveries: {states or 'none left'}; nothing redriven")
    redriven, skipped = [], []
    exists: dict[str, bool] = {}
    for row in rows:
        name, ref = row["recipient"], messages.message_ref(row["message_id"])
        item = Redriven(message_id=ref, to=name, attempts=row["attempt"])
        if not exists.setdefault(name, agents.exists(tx, name)):
            skipped.append(item)
            continue
        lapsed = row["expires_at"] is not None and row["expires_at"] <= tx.now
        tx.run("ops.redrive", (row["id"], tx.now, None if lapsed else row["expires_at"]))
        extra = {"ttl_dropped": True} if lapsed else {}
        tx.event(name, "redrive", ref, attempts=row["attempt"], by=by, **extra)
        redriven.append(item)
    return RedriveResult(redriven=redriven, skipped=skipped)


# --- locks and agents -------------------------------------------------------------------------


def force_release(tx: Tx, by: str, resource: str, holder: str | None) -> ForceReleaseResult:
    """Release every lock on exactly ``resource`` (of ``holder``, when given), whoever holds it.

    The holder is not asked; the next grant gets a greater fencing token, so a late write of the
    holder's is refused wherever the token is checked.
    """
    res = paths.parse(resource)
    rows = tx.all("ops.locks_on", (res.text, holder))
    if not rows:
        near = locks.list_locks(tx, None, res.text, None, 5).locks
        hint = (
            "locks that overlap it: " + ", ".join(f"{lock.resource} ({lock.holder})" for lock in near)
            if near
            else "no live lock overlaps it"
        )
        whose = f" held by {holder}" if holder else ""
        raise NotFound(f"no lock on {res.text!r}{whose}; nothing was released; {hint} (teamroom locks lists them)")
    released = [_drop_lock(tx, by, row) for row in rows]
    return ForceReleaseResult(released=released)


def _drop_lock(tx: Tx, by: str, row: Any) -> ReleasedLock:
    tx.run("ops.drop_lock", (row["id"],))
    expired = row["expires_at"] <= tx.now
    tx.event(row["holder"], "lock_release", row["resource"], token=row["token"], expired=expired, forced=True, by=by)
    return ReleasedLock(
        resource=row["resource"], holder=row["holder"], mode=row["mode"], token=row["token"], expired=expired
    )


def forget(tx: Tx, by: str, name: str, force: bool) -> ForgetResult:
    """Take ``name`` out of the known agents (so out of ``@all`` and ``@ROLE``); its history stays.

    Refused while it is live, has messages waiting or holds locks, unless ``force``: then its
    deliveries become dead letters (their senders told) and its locks are released. An agent that
    calls a tool again is known again, as any new name is.
    """
    row = tx.one("ops.agent", (name,))
    if row is None:
        agents.require(tx, name)
    waiting = [dict(d) for d in tx.all("ops.live_deliveries_of", (name,))]
    held = tx.all("ops.locks_of", (name,))
    live = [lock["resource"] for lock in held if lock["expires_at"] > tx.now]
    if not force:
        why = []
        if agents.liveness(tx.now, row["last_seen"]) == "live":
            why.append(f"was seen {(tx.now - row['last_seen']) // 1000} s ago")
        if waiting:
            why.append(f"has {len(waiting)} message(s) queued or leased")
        if live:
            why.append(f"holds {len(live)} lock(s): {', '.join(live[:5])}")
        if why:
            raise Conflict(
                f"{name} {'; '.join(why)}; nothing was changed. Stop it first, or pass --force (its messages"
                " become dead letters, their senders told, and its locks are released)"
            )
    tx.run("ops.forget_agent", (name,))  # first: a dead letter it sent itself tells nobody
    tx.seen.pop(name, None)  # this process wrote its last_seen lately: it must be written afresh
    for delivery in waiting:
        messages.dead_letter(tx, delivery, f"its recipient {name} was forgotten (teamroom agents forget, by {by})")
    for lock in held:
        _drop_lock(tx, by, lock)
    tx.event(name, "agent_forgotten", name, by=by, dead=len(waiting), released=live)
    return ForgetResult(agent=name, dead=len(waiting), released=live)


def days_ms(days: float) -> int:
    return round(days * DAY_MS)

"""Handoffs: a task's state written down for the next agent, or for the same agent after a crash.

A handoff is kept for good. ``resume`` takes one (once: who and when go to the audit log); the
agent that took it gets it again on a later resume when nothing newer is open for it, so a taker
that crashes loses nothing. Once an agent writes a newer handoff for a task, the older ones it
took or wrote for that task are stale and never come back to it.
"""

from __future__ import annotations

from typing import Any

from teamroom.errors import Conflict, Invalid, NotFound
from teamroom.schemas import HandoffRecord, HandoffResult, ResumeResult
from teamroom.schemas.locks import LockEntry
from teamroom.store.rules import common, locks, messages
from teamroom.store.tx import Tx, dumps, iso, loads, parse_ref

LIST_FIELDS = ("done", "remaining", "blockers", "files")
PARK_MS = 24 * 60 * 60 * 1000  # how long transferred locks wait for the handoff to be taken before they are free


def handoff_ref(handoff_id: int) -> str:
    return f"h{handoff_id}"


def parse_handoff_ref(ref: str) -> int:
    return parse_ref(ref, "h", "handoff", "handoff ids look like 'h7' (the handoff_id field of handoff)")


def parking(handoff_id: int) -> str:
    """The holder of a handoff's transferred locks until it is taken; ':' is in no agent name."""
    return f"handoff:{handoff_ref(handoff_id)}"


def _record(row: Any) -> HandoffRecord:
    return HandoffRecord(
        handoff_id=handoff_ref(row["id"]),
        from_=row["sender"],
        task=row["task"],
        summary=row["summary"],
        next_step=row["next_step"],
        **{field: loads(row[field]) for field in LIST_FIELDS},
        branch=row["branch"],
        scope=row["scope"],
        locks=loads(row["locks"]),
        to=loads(row["recipients"]),
        created_at=iso(row["created_at"]),
        taken_by=row["taken_by"],
        taken_at=None if row["taken_at"] is None else iso(row["taken_at"]),
    )


def _notice(record: HandoffRecord) -> str:
    """The body of the handoff message: enough to act on without reading the payload."""
    lines = [f"Handoff {record.handoff_id} from {record.from_}, task {record.task!r}.", f"Now: {record.summary}"]
    if record.remaining:
        lines.append("Remaining: " + "; ".join(record.remaining))
    if record.blockers:
        lines.append("Blockers: " + "; ".join(record.blockers))
    lines.append(f"Next step: {record.next_step}")
    held = f" and the locks held for you ({', '.join(record.locks)})" if record.locks else ""
    lines.append(f"Take it{held} with resume(handoff_id='{record.handoff_id}').")
    return "\n".join(lines)


# --- handoff --------------------------------------------------------------------------------


def create(
    tx: Tx,
    agent: str,
    task: str,
    summary: str,
    next_step: str,
    fields: dict[str, Any],
    to: list[str] | None,
    transfer_locks: bool,
) -> HandoffResult:
    """Store the record, park the caller's locks for it, and send it to ``to``: one transaction."""
    tx.touch(agent)
    recipients = messages.resolve_recipients(tx, agent, to) if to else []
    held = [row["resource"] for row in locks.held_by(tx, agent)] if transfer_locks else []
    values = (agent, task, summary, next_step, *(dumps(fields[f] or []) for f in LIST_FIELDS))
    values += (fields["branch"], fields["scope"], dumps(to or []), dumps(recipients), dumps(held), tx.now)
    row = tx.one("handoffs.create", values)
    if held:
        # Tokens are kept; the parking holder is no agent's name, so every claim in between conflicts.
        locks.reassign(tx, agent, parking(row["id"]), held, expires_at=tx.now + PARK_MS, actor=agent)
    record = _record(row)
    message_id = None
    if recipients:
        sent = messages.deliver(
            tx, agent, recipients, _notice(record), subject=f"handoff: {task}"[:200], kind="handoff",
            payload=record.model_dump(mode="json"), priority=2,
        )  # fmt: skip
        message_id = sent.message_id
        tx.run("handoffs.set_message", (row["id"], messages.parse_message_ref(message_id)))
    tx.event(agent, "handoff", record.handoff_id, task=task, to=recipients, locks=record.locks)
    return HandoffResult(handoff_id=record.handoff_id, recipients=recipients, message_id=message_id, locks=record.locks)


# --- resume ---------------------------------------------------------------------------------


def resume(tx: Tx, agent: str, task: str | None, handoff_id: str | None) -> ResumeResult:
    tx.touch(agent)
    if handoff_id is not None:
        row = _by_id(tx, agent, handoff_id, task)
    elif task is not None:
        row = _for_task(tx, agent, task)
    else:
        row = _for_agent(tx, agent)
    if row["taken_by"] == agent:
        return ResumeResult(handoff=_record(row), resumed_before=True, locks=_held_from(tx, agent, row))
    tx.run("handoffs.take", (row["id"], agent, tx.now))
    moved = locks.reassign(tx, parking(row["id"]), agent, actor=agent, fence=True)  # SPEC §3: new, greater tokens
    if moved:  # each lock's own TTL runs from now, as if the taker had just claimed it
        locks.renew(tx, agent, [lock["resource"] for lock in moved])
    if row["message_id"] is not None:
        messages.settle(tx, agent, row["message_id"], "resume")
    ref = handoff_ref(row["id"])
    tx.event(
        agent, "handoff_taken", ref, **{"from": row["sender"]}, task=row["task"],
        locks=[lock["resource"] for lock in moved],
    )  # fmt: skip
    row = tx.one("handoffs.by_id", (row["id"],))
    return ResumeResult(handoff=_record(row), locks=_held_from(tx, agent, row))


def _held_from(tx: Tx, agent: str, row: Any) -> list[LockEntry]:
    """The locks transferred with this handoff that ``agent`` holds now (a lock left parked past PARK_MS is free)."""
    transferred = set(loads(row["locks"]))
    if not transferred:
        return []
    return [locks.entry(lock) for lock in locks.held_by(tx, agent) if lock["resource"] in transferred]


def _taken_elsewhere(row: Any) -> str:
    return f"{handoff_ref(row['id'])} was taken by {row['taken_by']!r} at {iso(row['taken_at'])}"


def _by_id(tx: Tx, agent: str, ref: str, task: str | None) -> Any:
    row = tx.one("handoffs.by_id", (parse_handoff_ref(ref),))
    if row is None:
        raise NotFound(f"no handoff {ref!r}; resume with no arguments finds the newest one addressed to you")
    if task is not None and task != row["task"]:
        raise Invalid(f"{ref!r} is for task {row['task']!r}, not {task!r}; pass one of task or handoff_id")
    if row["taken_by"] not in (None, agent):
        raise Conflict(f"{_taken_elsewhere(row)}; ask them, or look for a newer handoff for {row['task']!r}")
    return row


def _for_task(tx: Tx, agent: str, task: str) -> Any:
    """The newest handoff for ``task`` that is open or already the caller's."""
    newest_taken = None
    for row in tx.all("handoffs.for_task", (task,)):
        if row["taken_by"] is None or row["taken_by"] == agent:
            return row
        if row["sender"] == agent:
            break  # the caller handed the task on after this: what it took before is stale
        newest_taken = newest_taken or row
    if newest_taken is not None:
        raise NotFound(f"no open handoff for task {task!r}: the newest, {_taken_elsewhere(newest_taken)}")
    raise NotFound(f"no handoff for task {task!r}; handoff ids and tasks come from the handoff tool")


def _for_agent(tx: Tx, agent: str) -> Any:
    """The newest open handoff for the caller (to it, its role, or its own checkpoint), else the newest it took."""
    # Each query reaches its rows through a partial index, however many handoffs were taken before.
    opened = common.open_handoffs(tx, agent, 1)
    row = opened[0] if opened else tx.one("handoffs.taken_back", (agent,))
    if row is None:
        raise NotFound(
            f"no open handoff addressed to {agent!r} or its role, and no checkpoint of its own;"
            " pass task='...' to take any open handoff for a task"
        )
    return row

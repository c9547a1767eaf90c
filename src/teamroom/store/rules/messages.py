"""Messages: send, lease, ack, nack, threads; dead letters and expiry.

A message has one delivery row per recipient. A delivery is ``queued`` until leased; a lease is
a receipt plus a deadline (``visible_at``). Ack and nack take only the current receipt of a live
lease. A lapsed lease is free to be leased again with attempt + 1; a delivery leased
``max_attempts`` times is ``dead``, one past its TTL is ``expired``, and either sends the sender a
``delivery_failed`` message.
"""

from __future__ import annotations

import secrets
from typing import Any

from teamroom.errors import Invalid, LeaseExpired, NotFound, NotOwner
from teamroom.schemas import (
    AckResult,
    Delivery,
    InboxMessage,
    InboxResult,
    LeasedMessage,
    NackResult,
    PollResult,
    SendResult,
    ThreadMessage,
    ThreadResult,
)
from teamroom.schemas.common import PRIORITY_NAMES, SYSTEM_AGENT
from teamroom.store.rules import agents
from teamroom.store.tx import Tx, dumps, iso, loads, parse_ref


def message_ref(message_id: int) -> str:
    return f"m{message_id}"


def parse_message_ref(ref: str) -> int:
    return parse_ref(ref, "m", "message", "message ids look like 'm42'")


def _receipt(delivery_id: int) -> str:
    return f"r{delivery_id}.{secrets.token_hex(6)}"


# --- send -------------------------------------------------------------------------------------


def resolve_recipients(tx: Tx, sender: str, to: list[str]) -> list[str]:
    """Expand names, ``@all`` and ``@ROLE`` into distinct known agent names, in order."""
    found: list[str] = []
    for spec in to:
        if spec == "@all":
            names = [r[0] for r in tx.all("messages.all_members", (sender, tx.now - agents.STALE_MS))]
            if not names:
                raise NotFound("@all has no member: no other agent has been seen in the last 15 minutes")
        elif spec.startswith("@"):
            names = _role_members(tx, sender, spec[1:])
        else:
            agents.require(tx, spec)
            names = [spec]
        found.extend(n for n in names if n not in found)
    return found


def _role_members(tx: Tx, sender: str, role: str) -> list[str]:
    wanted = {role, role[:-1]} if role.endswith("s") and len(role) > 1 else {role}
    names = [r[0] for r in tx.all("messages.role_members", (sender, tx.array(sorted(wanted))))]
    if not names:
        roles = sorted({r[0] for r in tx.all("messages.roles")})
        raise NotFound(f"@{role} has no member; roles in use: {', '.join(roles) or 'none (agents call register)'}")
    return names


def send(
    tx: Tx,
    agent: str,
    to: list[str] | None,
    body: str,
    opts: dict[str, Any],
) -> SendResult:
    tx.touch(agent)
    key = opts["idempotency_key"]
    if key is not None:
        row = tx.one("messages.by_idempotency_key", (agent, key))
        if row is not None:
            return SendResult(
                message_id=message_ref(row["id"]),
                thread_id=row["thread_id"],
                recipients=loads(row["recipients"]),
                duplicate=True,
            )
    thread_id, reply_to = opts["thread_id"], None
    if opts["reply_to"] is not None:
        reply_to = parse_message_ref(opts["reply_to"])
        original = tx.one("messages.original", (reply_to,))
        if original is None:
            raise NotFound(f"no message {opts['reply_to']!r} to reply to")
        if thread_id is not None and thread_id != original["thread_id"]:
            raise Invalid(
                f"reply_to {opts['reply_to']!r} is in thread {original['thread_id']!r}, not {thread_id!r};"
                " drop thread_id"
            )
        thread_id = original["thread_id"]
        to = to or [original["sender"]]
    if not to:
        raise Invalid("say who to send to: to='name', a list of names, '@all' or '@role'")
    recipients = resolve_recipients(tx, agent, to)
    return _insert(tx, agent, recipients, body, opts, thread_id, reply_to)


def _insert(
    tx: Tx,
    sender: str,
    recipients: list[str],
    body: str,
    opts: dict[str, Any],
    thread_id: str | None,
    reply_to: int | None,
) -> SendResult:
    ttl = opts["ttl_seconds"]
    expires_at = None if ttl is None else tx.now + ttl * 1000
    payload = opts["payload"]
    # A new conversation (thread_id None) is the thread of its first message's id, set by the insert.
    row = (
        sender, dumps(recipients), opts["subject"], body, opts["kind"],
        None if payload is None else dumps(payload), opts["priority"], thread_id, reply_to,
        opts["idempotency_key"], opts["max_attempts"], expires_at, tx.now,
    )  # fmt: skip
    message_id, thread_id = tx.one("messages.insert", row)
    tx.many(
        "messages.insert_delivery",
        [(message_id, r, opts["priority"], opts["max_attempts"], tx.now, expires_at, tx.now) for r in recipients],
    )
    ref = message_ref(message_id)
    tx.event(sender, "send", ref, to=recipients, kind=opts["kind"], thread_id=thread_id)
    return SendResult(message_id=ref, thread_id=thread_id, recipients=recipients)


def deliver(
    tx: Tx,
    sender: str,
    recipients: list[str],
    body: str,
    *,
    subject: str,
    kind: str,
    payload: dict[str, Any],
    priority: int,
    thread_id: str | None = None,
    reply_to: int | None = None,
) -> SendResult:
    """Send a message from inside another transaction (a handoff's notice, a delivery_failed), default retries."""
    opts = {
        "subject": subject, "kind": kind, "payload": payload, "priority": priority,
        "ttl_seconds": None, "max_attempts": 5, "idempotency_key": None,
    }  # fmt: skip
    return _insert(tx, sender, recipients, body, opts, thread_id, reply_to)


def settle(tx: Tx, agent: str, message_id: int, why: str) -> bool:
    """Ack ``agent``'s live delivery of a message it no longer needs (what it asked for was done another way).

    The receipt is kept, so an ack the agent sends later with it is a harmless no-op.
    """
    settled = tx.run("messages.settle", (tx.now, message_id, agent))
    if settled:
        tx.event(agent, "ack", message_ref(message_id), via=why)
    return bool(settled)


def _notify_failure(tx: Tx, delivery: dict[str, Any], state: str, reason: str) -> None:
    """Mark a delivery dead or expired and tell its sender, in the same transaction."""
    tx.run("messages.retire", (state, reason, tx.now, delivery["id"]))
    ref = message_ref(delivery["message_id"])
    tx.event(None, state, ref, recipient=delivery["recipient"], attempt=delivery["attempt"], reason=reason)
    msg = tx.one("messages.failed_message", (delivery["message_id"],))
    if msg["sender"] == SYSTEM_AGENT or not agents.exists(tx, msg["sender"]):
        return
    deliver(
        tx, SYSTEM_AGENT, [msg["sender"]], f"Your message {ref} to {delivery['recipient']} is {state}: {reason}.",
        subject=f"delivery failed: {msg['subject'] or ref}"[:200], kind="delivery_failed", priority=2,
        payload={
            "message_id": ref, "recipient": delivery["recipient"], "state": state, "reason": reason,
            "attempts": delivery["attempt"],
        },
        thread_id=msg["thread_id"], reply_to=delivery["message_id"],
    )  # fmt: skip


def dead_letter(tx: Tx, delivery: dict[str, Any], reason: str) -> None:
    """Make a live delivery dead now and tell its sender (an operator's verb: ``teamroom agents forget``)."""
    _notify_failure(tx, delivery, "dead", reason)


def _retire_if_due(tx: Tx, row: dict[str, Any]) -> bool:
    """Dead-letter or expire one free delivery if its time has come; True if it did."""
    if row["expires_at"] is not None and row["expires_at"] <= tx.now:
        _notify_failure(tx, row, "expired", f"not acknowledged within its TTL (attempts: {row['attempt']})")
        return True
    if row["attempt"] >= row["max_attempts"]:
        _notify_failure(tx, row, "dead", f"leased {row['attempt']} times without an ack (max_attempts)")
        return True
    return False


def sweep(tx: Tx) -> None:
    """Housekeeping for deliveries nobody is polling: lapsed leases, dead letters, TTL expiry."""
    lapsed = tx.all("messages.lapsed", (tx.now,))
    for row in map(dict, lapsed):
        if not _retire_if_due(tx, row):
            tx.run("messages.requeue_lapsed", (tx.now, row["id"]))
            tx.event(row["recipient"], "lease_lapsed", message_ref(row["message_id"]), attempt=row["attempt"])
    stale = tx.all("messages.expired_queued", (tx.now,))
    for row in map(dict, stale):
        _retire_if_due(tx, row)


# --- lease, ack, nack -----------------------------------------------------------------------


def lease(
    tx: Tx, agent: str, limit: int, lease_seconds: int, kinds: list[str] | None, thread_id: str | None
) -> PollResult:
    tx.touch(agent)
    kinds_param = tx.array(kinds) if kinds else None
    lease_ms = lease_seconds * 1000
    leased: list[LeasedMessage] = []
    while len(leased) < limit:
        rows = tx.all("messages.lease_ready", (agent, tx.now, kinds_param, thread_id, limit - len(leased)))
        if not rows:
            break
        for row in map(dict, rows):
            if _retire_if_due(tx, row):
                continue
            receipt, attempt = _receipt(row["id"]), row["attempt"] + 1
            tx.run("messages.lease", (attempt, receipt, tx.now + lease_ms, lease_ms, tx.now, row["id"]))
            ref = message_ref(row["message_id"])
            tx.event(agent, "lease", ref, attempt=attempt, lease_seconds=lease_seconds)
            leased.append(
                LeasedMessage(
                    receipt=receipt,
                    message_id=ref,
                    from_=row["sender"],
                    to=loads(row["recipients"]),
                    subject=row["subject"],
                    body=row["body"],
                    kind=row["kind"],
                    payload=loads(row["payload"]),
                    priority=PRIORITY_NAMES[row["priority"]],
                    thread_id=row["thread_id"],
                    reply_to=None if row["reply_to"] is None else message_ref(row["reply_to"]),
                    attempt=attempt,
                    max_attempts=row["max_attempts"],
                    lease_expires_at=iso(tx.now + lease_ms),
                    sent_at=iso(row["sent_at"]),
                )
            )
    return PollResult(messages=leased)


def next_ready_at(tx: Tx, agent: str, kinds: list[str] | None, thread_id: str | None) -> int | None:
    return tx.one("messages.next_ready_at", (agent, tx.array(kinds) if kinds else None, thread_id))[0]


def receipt_id(receipt: str) -> int:
    """The delivery id inside a receipt (``r17.3f9a...`` -> 17), or -1 when it has none."""
    head = receipt.split(".", 1)[0]
    return int(head[1:]) if head[:1] == "r" and head[1:].isascii() and head[1:].isdigit() and len(head) < 20 else -1


def _leased_row(tx: Tx, agent: str, receipt: str) -> dict[str, Any]:
    """The delivery behind a receipt, if the caller holds its live lease; otherwise the right refusal."""
    row = tx.one("messages.delivery", (receipt_id(receipt),))
    if row is None:
        raise NotFound(f"no receipt {receipt!r}; use the receipt field of a message from poll")
    if row["recipient"] != agent:
        raise NotOwner(f"receipt {receipt!r} belongs to {row['recipient']!r}'s lease, not {agent!r}'s")
    if row["receipt"] != receipt or row["state"] != "leased" or row["visible_at"] <= tx.now:
        if row["state"] == "acked" and row["receipt"] == receipt:
            return dict(row)  # acking twice with the same receipt is a no-op
        raise LeaseExpired(
            f"the lease behind {receipt!r} expired or was re-leased (the delivery is {row['state']}); "
            "poll again and use the new receipt"
        )
    return dict(row)


def ack(tx: Tx, agent: str, receipts: list[str]) -> AckResult:
    tx.touch(agent)
    unique = list(dict.fromkeys(receipts))
    for receipt in unique:
        # The common case in one statement; anything else is diagnosed below and rolled back.
        done = tx.one("messages.ack", (tx.now, receipt_id(receipt), receipt, agent))
        if done is None:
            if _leased_row(tx, agent, receipt)["state"] == "acked":
                continue  # acking twice with the same receipt is a no-op
            raise AssertionError("unreachable: _leased_row refuses every other case")
        tx.event(agent, "ack", message_ref(done[0]), attempt=done[1])
    return AckResult(acked=len(unique))


def nack(tx: Tx, agent: str, receipt: str, reason: str | None, retry_after_seconds: float) -> NackResult:
    tx.touch(agent)
    row = _leased_row(tx, agent, receipt)
    if row["state"] == "acked":
        raise LeaseExpired(f"{receipt!r} was already acked; an acked delivery never comes back")
    ref = message_ref(row["message_id"])
    tx.event(agent, "nack", ref, attempt=row["attempt"], reason=reason)
    if row["attempt"] >= row["max_attempts"]:
        why = f"nacked on its last attempt ({row['attempt']} of {row['max_attempts']})"
        _notify_failure(tx, row, "dead", f"{why}: {reason}" if reason else why)
        return NackResult(state="dead", attempt=row["attempt"])
    tx.run("messages.nack", (tx.now + round(retry_after_seconds * 1000), reason, tx.now, row["id"]))
    return NackResult(state="queued", attempt=row["attempt"])


def renew_leases(tx: Tx, agent: str) -> int:
    """Extend every live lease of ``agent`` by its original duration, from now."""
    renewed = tx.run("messages.renew_leases", (tx.now, agent))
    if renewed:  # a new deadline is a state change: the log must be able to tell when each lease ends
        tx.event(agent, "renew", agent, leases=renewed)
    return renewed


def unread(tx: Tx, agent: str) -> int:
    return tx.one("messages.unread", (agent, tx.now))[0]


# --- reading --------------------------------------------------------------------------------


def _shown_state(tx: Tx, state: str, visible_at: int) -> str:
    return "queued" if state == "leased" and visible_at <= tx.now else state


def _thread_message(row, deliveries: list[Delivery]) -> dict[str, Any]:
    return dict(
        message_id=message_ref(row["id"]),
        from_=row["sender"],
        subject=row["subject"],
        body=row["body"],
        kind=row["kind"],
        payload=loads(row["payload"]),
        priority=PRIORITY_NAMES[row["priority"]],
        reply_to=None if row["reply_to"] is None else message_ref(row["reply_to"]),
        sent_at=iso(row["sent_at"]),
        deliveries=deliveries,
    )


def thread(tx: Tx, agent: str | None, thread_id: str, limit: int) -> ThreadResult:
    if agent is not None:
        tx.touch(agent)
    rows = tx.all("messages.thread", (thread_id, limit))
    if not rows:
        raise NotFound(f"no thread {thread_id!r}; a thread id is the thread_id field of send or poll")
    by_message: dict[int, list[Delivery]] = {r["id"]: [] for r in rows}
    for d in tx.all("messages.thread_deliveries", (tx.array(by_message),)):
        by_message[d["message_id"]].append(
            Delivery(to=d["recipient"], state=_shown_state(tx, d["state"], d["visible_at"]), attempt=d["attempt"])
        )
    messages = [ThreadMessage(**_thread_message(r, by_message[r["id"]])) for r in rows]
    return ThreadResult(thread_id=thread_id, messages=messages)


def inbox(tx: Tx, agent: str, limit: int) -> InboxResult:
    rows = tx.all("messages.inbox", (agent, limit))
    messages = []
    for r in rows:
        state = _shown_state(tx, r["state"], r["visible_at"])
        delivery = Delivery(to=r["recipient"], state=state, attempt=r["attempt"])
        messages.append(
            InboxMessage(**_thread_message(r, [delivery]), thread_id=r["thread_id"], state=state, attempt=r["attempt"])
        )
    return InboxResult(agent=agent, messages=messages)

"""The checker: do the recorded history, the audit log and the final store keep SPEC §6's promises?

Three sources, each checked against the others:
- the history: what every caller saw (results, refusals, unanswered calls);
- the audit log, replayed from scratch: it must account for every delivery's state and attempt
  in the final store, and no step of it may break a rule (a lease granted while another was live,
  an ack without a live lease, a lease after the delivery was acked or dead);
- the store itself: ``PRAGMA integrity_check``, foreign keys, an events table with no gaps.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from teamroom.store.tx import iso

from . import locks
from .history import SPEC_CODES, History

Key = tuple[str, str]  # (message id, recipient): one delivery

# What a well-behaved caller can be told in the chaos: a late ack or nack; a release after its
# lock expired and was taken over (not_owner) or after an unanswered release went through (not_found).
EXPECTED_REFUSALS = {
    ("ack", "lease_expired"),
    ("nack", "lease_expired"),
    ("release_lock", "not_found"),
    ("release_lock", "not_owner"),
}


@dataclass
class Report:
    counts: dict[str, float] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def bad(self, text: str) -> None:
        self.violations.append(text)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self, shown: int = 25) -> str:
        lines = [f"{name:>24}: {value:g}" for name, value in self.counts.items()]
        if self.violations:
            lines.append(f"{len(self.violations)} violations:")
            lines += [f"  - {v}" for v in self.violations[:shown]]
            if len(self.violations) > shown:
                lines.append(f"  ... and {len(self.violations) - shown} more")
        else:
            lines.append("no violations")
        return "\n".join(lines)


@dataclass
class Delivery:
    """One delivery as the audit log tells it."""

    state: str = "queued"
    attempt: int = 0
    expires: int = 0  # end of the current lease, ms
    lease_ms: int = 0
    acked_attempt: int | None = None


@dataclass
class Replay:
    deliveries: dict[Key, Delivery] = field(default_factory=dict)
    leases: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (message, recipient, attempt) -> expiry
    kinds: Counter[str] = field(default_factory=Counter)


def check(history: History, db: Path, workdir: Path, *, senders: list[str]) -> Report:
    report = Report()
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        store_health(conn, report)
        replay = replay_log(conn, report)
        log_matches_store(conn, replay, report)
        agents_logged(conn, report)
        observed = observed_leases(history, replay, report)
        acks(history, observed, replay, conn, report)
        sends(history, conn, senders, report)
        dead_letters(conn, report)
        errors(history, workdir, report)
        report.counts.update(_counts(history, replay, conn, senders))
        locks.check(history, conn, report)
        for last in ("lost", "duplicated"):
            report.counts[last] = report.counts.pop(last)
    finally:
        conn.close()
    return report


# --- the store ---------------------------------------------------------------------------------


def store_health(conn: sqlite3.Connection, report: Report) -> None:
    integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    if integrity != ["ok"]:
        report.bad(f"PRAGMA integrity_check: {integrity[:5]}")
    if conn.execute("PRAGMA foreign_key_check").fetchall():
        report.bad("PRAGMA foreign_key_check found rows pointing nowhere")
    count, top = conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM events").fetchone()
    if count != top:
        report.bad(f"the events log has gaps: {count} events but ids up to {top} (was it rewritten?)")


# --- the audit log -----------------------------------------------------------------------------


def replay_log(conn: sqlite3.Connection, report: Report) -> Replay:
    """Rebuild every delivery's state from the events alone, checking each step is allowed."""
    replay = Replay()
    by_recipient: dict[str, list[Delivery]] = defaultdict(list)
    for event in conn.execute("SELECT id, at, agent, kind, subject, data FROM events ORDER BY id"):
        kind, at, subject = event["kind"], event["at"], event["subject"]
        data = json.loads(event["data"]) if event["data"] else {}
        replay.kinds[kind] += 1
        if kind == "send":
            for recipient in data["to"]:
                replay.deliveries[(subject, recipient)] = delivery = Delivery()
                by_recipient[recipient].append(delivery)
            continue
        if kind == "renew":  # a heartbeat renews every live lease of the agent by its own duration
            live = [d for d in by_recipient[event["agent"]] if d.state == "leased" and d.expires > at]
            for d in live:
                d.expires = at + d.lease_ms
            if len(live) != data.get("leases"):
                report.bad(f"event {event['id']}: renew says {data.get('leases')} leases, the log knows {len(live)}")
            continue
        if kind not in ("lease", "ack", "nack", "lease_lapsed", "lease_returned", "dead", "expired"):
            continue
        recipient = data.get("recipient") if kind in ("dead", "expired") else event["agent"]
        attempt = data.get("attempt")
        where = f"event {event['id']} ({kind} {subject} to {recipient}, attempt {attempt})"
        d = replay.deliveries.get((subject, recipient))
        if d is None:
            report.bad(f"{where}: the log never sent that delivery")
            continue
        if kind == "lease":
            if d.state == "leased" and d.expires > at:
                report.bad(
                    f"{where}: leased while attempt {d.attempt}'s lease ran {d.expires - at} ms more: two holders"
                )
            elif d.state not in ("queued", "leased"):
                report.bad(f"{where}: leased again after it was {d.state}")
            if attempt != d.attempt + 1:
                report.bad(f"{where}: attempt should be {d.attempt + 1}")
            d.state, d.attempt, d.lease_ms = "leased", attempt, data["lease_seconds"] * 1000
            d.expires = at + d.lease_ms
            replay.leases[(subject, recipient, attempt)] = d.expires
        elif kind in ("ack", "nack"):
            if d.state != "leased" or d.attempt != attempt or at >= d.expires:
                report.bad(f"{where}: accepted without a live lease (state {d.state}, attempt {d.attempt})")
            d.state = "acked" if kind == "ack" else "queued"
            if kind == "ack":
                d.acked_attempt = attempt
        elif kind == "lease_returned":  # its caller was gone before it learnt of the lease: the attempt is unspent
            if d.state != "leased" or at >= d.expires or attempt != d.attempt - 1:
                report.bad(f"{where}: returned a lease that was not live (state {d.state}, attempt {d.attempt})")
            d.state, d.attempt = "queued", attempt
        elif kind == "lease_lapsed":
            if d.state != "leased" or at < d.expires:
                report.bad(f"{where}: lapsed a lease that was not over (state {d.state})")
            d.state = "queued"
        else:  # dead or expired: from the queue, or from a lease that is over
            if not (d.state == "queued" or (d.state == "leased" and at >= d.expires)) or d.attempt != attempt:
                report.bad(f"{where}: retired from state {d.state}, attempt {d.attempt}")
            d.state = kind
    return replay


def log_matches_store(conn: sqlite3.Connection, replay: Replay, report: Report) -> None:
    """The final state and attempt of every delivery is what the log says."""
    pending = dict(replay.deliveries)
    for row in conn.execute("SELECT message_id, recipient, state, attempt FROM deliveries"):
        key = (f"m{row['message_id']}", row["recipient"])
        d = pending.pop(key, None)
        if d is None:
            report.bad(f"delivery {key} is in the store but the log never sent it")
        elif (d.state, d.attempt) != (row["state"], row["attempt"]):
            report.bad(f"delivery {key}: the log says {d.state}/{d.attempt}, the store {row['state']}/{row['attempt']}")
    for key in pending:
        report.bad(f"delivery {key} was sent according to the log but is not in the store")


def agents_logged(conn: sqlite3.Connection, report: Report) -> None:
    """Every agent's first sighting is logged once, and its record is what its last register said."""
    sightings = Counter(r[0] for r in conn.execute("SELECT subject FROM events WHERE kind = 'agent_seen'"))
    registered = {
        agent: json.loads(data)
        for agent, data in conn.execute("SELECT agent, data FROM events WHERE kind = 'register' ORDER BY id")
    }
    for name, role, capabilities in conn.execute("SELECT name, role, capabilities FROM agents"):
        if sightings[name] != 1:
            report.bad(f"agent {name} was first seen {sightings[name]} times according to the log")
        said = registered.get(name)
        if said is not None and (said["role"], said["capabilities"]) != (role, json.loads(capabilities)):
            report.bad(f"agent {name} is {role}/{capabilities} in the store, the log's last register says {said}")


# --- what callers saw --------------------------------------------------------------------------


@dataclass
class Seen:
    key: Key
    attempt: int
    worker: str


def observed_leases(history: History, replay: Replay, report: Report) -> dict[str, Seen]:
    """Every lease a caller got: one receipt each, one caller per attempt, and each one in the log."""
    seen: dict[str, Seen] = {}
    holders: dict[tuple[Key, int], str] = {}
    for op in history.ok("poll"):
        for m in op.result["messages"]:
            key, attempt, receipt = (m["message_id"], op.args["agent"]), m["attempt"], m["receipt"]
            if receipt in seen:
                report.bad(f"receipt {receipt} was handed out twice")
            if (key, attempt) in holders:
                report.bad(f"delivery {key} attempt {attempt} went to {holders[key, attempt]} and to {op.worker}")
            holders[key, attempt] = op.worker
            seen[receipt] = Seen(key, attempt, op.worker)
            expires = replay.leases.get((*key, attempt))
            if expires is None:
                report.bad(f"{op.worker} leased {key} attempt {attempt} but the log has no such lease")
            elif iso(expires) != m["lease_expires_at"]:
                report.bad(f"{op.worker} leased {key} until {m['lease_expires_at']}, the log says {iso(expires)}")
    return seen


def acks(history: History, seen: dict[str, Seen], replay: Replay, conn: sqlite3.Connection, report: Report) -> None:
    """An ok ack took effect, for good; no delivery was acked through two different leases."""
    acked: dict[Key, set[str]] = defaultdict(set)
    for op in history.ok("ack"):
        for receipt in op.args["receipts"]:
            lease = seen.get(receipt)
            if lease is None:
                report.bad(f"{op.worker} acked {receipt}, a receipt no poll returned")
                continue
            acked[lease.key].add(receipt)
            d = replay.deliveries.get(lease.key)
            if d is None or d.acked_attempt != lease.attempt:
                report.bad(f"ack of {lease.key} attempt {lease.attempt} returned ok but the log acked no such lease")
    final = {(f"m{r[0]}", r[1]): r[2] for r in conn.execute("SELECT message_id, recipient, state FROM deliveries")}
    for key, receipts in acked.items():
        if len(receipts) > 1:
            report.bad(f"delivery {key} was acked through {len(receipts)} different leases (duplicated)")
        if final.get(key) != "acked":
            report.bad(f"delivery {key} was acked, yet the store has it {final.get(key)}")
    report.counts["duplicated"] = sum(len(r) > 1 for r in acked.values())


def sends(history: History, conn: sqlite3.Connection, senders: list[str], report: Report) -> None:
    """Every answered send is in the store once, intact, and finally acked or dead-lettered."""
    attempted: dict[tuple[str, str], str] = {}
    answered: dict[tuple[str, str], set[str]] = defaultdict(set)
    recipients: dict[str, list[str]] = {}
    for op in history.ops:
        if op.tool == "send":
            attempted[op.args["agent"], op.args["idempotency_key"]] = op.args["body"]
            if op.outcome == "ok":
                answered[op.args["agent"], op.args["idempotency_key"]].add(op.result["message_id"])
                recipients[op.result["message_id"]] = op.result["recipients"]
    for (sender, key), ids in answered.items():
        if len(ids) > 1:
            report.bad(f"{sender}'s send {key} was answered with {len(ids)} different messages {sorted(ids)}")
    marks = ", ".join("?" * len(senders))
    stored: dict[str, tuple[tuple[str, str], str]] = {}
    for row in conn.execute(
        f"SELECT id, sender, idempotency_key, body FROM messages WHERE sender IN ({marks})", senders
    ):
        ident = (row["sender"], row["idempotency_key"])
        stored[f"m{row['id']}"] = ident
        if ident not in attempted:
            report.bad(f"message m{row['id']} from {ident} was never sent by anyone (phantom)")
        elif attempted[ident] != row["body"]:
            report.bad(f"message m{row['id']} holds a body other than the one sent")
    final = defaultdict(dict)
    for r in conn.execute("SELECT message_id, recipient, state FROM deliveries"):
        final[f"m{r[0]}"][r[1]] = r[2]
    lost = 0
    for message_id, names in recipients.items():
        if message_id not in stored:
            report.bad(f"send answered {message_id}, which is not in the store (lost)")
            lost += 1
            continue
        for name in names:
            state = final[message_id].get(name)
            if state not in ("acked", "dead"):
                report.bad(f"{message_id} to {name} ended {state}, neither acked nor dead-lettered (lost)")
                lost += 1
    for ident in attempted.keys() - answered.keys():
        report.bad(f"send {ident} never got an answer, though it was retried until it did")
    report.counts["lost"] = lost


def dead_letters(conn: sqlite3.Connection, report: Report) -> None:
    """Each dead delivery told its sender exactly once."""
    notices = Counter(
        (r[0], r[1])
        for r in conn.execute(
            "SELECT json_extract(payload, '$.message_id'), json_extract(payload, '$.recipient') FROM messages"
            " WHERE kind = 'delivery_failed' AND sender = 'teamroom'"
        )
    )
    for message_id, recipient, sender in conn.execute(
        "SELECT d.message_id, d.recipient, m.sender FROM deliveries d JOIN messages m ON m.id = d.message_id"
        " WHERE d.state = 'dead' AND m.sender != 'teamroom'"
    ):
        count = notices.get((f"m{message_id}", recipient), 0)
        if count != 1:
            report.bad(f"dead delivery m{message_id} to {recipient}: {sender} got {count} delivery_failed notices")


def errors(history: History, workdir: Path, report: Report) -> None:
    """Nothing but the expected refusals; no timeouts; no traceback in any server's log."""
    for op in history.ops:
        if op.outcome == "fail":
            if op.code not in SPEC_CODES:
                report.bad(f"{op.tool} answered with a code outside SPEC: {op.error[:200]}")
            elif (op.tool, op.code) not in EXPECTED_REFUSALS:
                report.bad(f"{op.tool}({_short(op.args)}) was refused: {op.error[:200]}")
        elif op.outcome == "info" and op.error == "timeout":
            report.bad(f"{op.tool} on server {op.node} got no answer in time")
    for failure in history.spawn_failures + history.node_errors:
        report.bad(failure)
    for log in sorted(workdir.glob("server-*.log")):
        text = log.read_text(errors="replace")
        if "Traceback" in text or " ERROR " in text:
            first = next(line for line in text.splitlines() if "Traceback" in line or " ERROR " in line)
            report.bad(f"{log.name}: {first[:300]}")
    if not history.drained:
        report.bad(f"deliveries were still queued or leased {history.drain_seconds:.0f} s after the chaos stopped")


def _short(args: dict) -> str:
    return ", ".join(f"{k}={str(v)[:40]!r}" for k, v in args.items())


def _counts(history: History, replay: Replay, conn: sqlite3.Connection, senders: list[str]) -> dict[str, float]:
    outcomes = Counter(op.outcome for op in history.ops)
    states = Counter(
        r[0]
        for r in conn.execute(
            f"SELECT d.state FROM deliveries d JOIN messages m ON m.id = d.message_id"
            f" WHERE m.sender IN ({', '.join('?' * len(senders))})",
            senders,
        )
    )
    return {
        "ops": len(history.ops),
        "ok": outcomes["ok"],
        "refused": outcomes["fail"],
        "unanswered": outcomes["info"],
        "kills": history.kills,
        "server starts": history.spawns,
        "messages sent": len({op.result["message_id"] for op in history.ok("send")}),
        "resends answered dup": sum(bool(op.result.get("duplicate")) for op in history.ok("send")),
        "deliveries": sum(states.values()),
        "leases": replay.kinds["lease"],
        "redeliveries": sum(1 for (_, _, attempt) in replay.leases if attempt > 1),
        "nacks": replay.kinds["nack"],
        "lapsed leases swept": replay.kinds["lease_lapsed"],
        "late acks refused": sum(1 for op in history.ops if op.tool == "ack" and op.code == "lease_expired"),
        "heartbeat renewals": replay.kinds["renew"],
        "acked": states["acked"],
        "dead-lettered": states["dead"],
        "drain seconds": round(history.drain_seconds, 1),
    }

"""Giving back what a call took when its caller never learnt of it (SPEC §2; issue 11 point 1).

A write whose caller was cancelled, timed out or went away after its transaction committed has
taken something nobody knows of: a lease whose receipt reached nobody, a lock whose token reached
nobody. A backend that sees this (its caller cancelled, the transaction already committed) runs the
matching give-back rule at once, in a transaction of its own, so that nothing waits out a lease or a
TTL for a caller that is gone. Each give-back is in the audit log.

- A lease goes back to ``queued``, visible now, with its attempt as it was before the lease
  (event ``lease_returned``): the delivery was never seen, so it spent no attempt.
- A lock granted (not renewed) by the call is released (event ``lock_release`` with
  ``returned: true``): an expired lock it took over stays taken over, as a release would leave it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from teamroom.store.rules import cli, locks, messages
from teamroom.store.tx import Tx


def leases(tx: Tx, receipts: list[str]) -> int:
    """Return the live leases behind ``receipts`` to the queue; the number returned."""
    returned = 0
    for receipt in receipts:
        row = tx.one("giveback.lease", (messages.receipt_id(receipt), receipt, tx.now))
        if row is not None:
            returned += 1
            ref = messages.message_ref(row["message_id"])
            tx.event(row["recipient"], "lease_returned", ref, attempt=row["attempt"])
    return returned


def granted_locks(tx: Tx, granted: list[tuple[str, int]]) -> int:
    """Release the locks of ``granted`` (resource, token) that are still held as granted; the number released."""
    released = 0
    for resource, token in granted:
        row = tx.one("giveback.lock", (resource, token))
        if row is not None:
            released += 1
            tx.event(row["holder"], "lock_release", resource, token=token, expired=False, returned=True)
    return released


def for_call(fn: Callable[..., Any], result: Any) -> tuple[Callable[..., Any], tuple[Any, ...]] | None:
    """The give-back rule and its arguments for a committed call of rule ``fn`` that answered ``result``;
    None when the call took nothing that must come back."""
    if fn is messages.lease or fn is cli.ack_then_lease:
        poll = result[1] if fn is cli.ack_then_lease else result
        receipts = [message.receipt for message in poll.messages]
        return (leases, (receipts,)) if receipts else None
    if fn is locks.claim:
        granted = [(lock.resource, lock.token) for lock in result.locks if not lock.renewed] if result.granted else []
        return (granted_locks, (granted,)) if granted else None
    return None

"""Housekeeping that must happen on time even when nobody writes (SPEC §2; issue 11 point 4).

Lapsed leases, TTL expiries and the dead letters they cause are applied by the sweep
(`messages.sweep`, `locks.sweep`), which rides along with writes about once a second. A store with
no writer would leave them waiting: a sender blocked in ``poll(wait_seconds=...)`` would not hear
that its message died, and ``teamroom log -f`` would not show a lease lapse. So every server also
looks once a second (`Store.keep_house`) whether anything is due, a read through the expiry
indexes, and runs the sweep when it is.
"""

from __future__ import annotations

from teamroom.store.rules import locks, messages
from teamroom.store.tx import Tx


def due(tx: Tx) -> bool:
    """Whether a lease has lapsed, a delivery passed its TTL, or an expired lock waits to be dropped."""
    return tx.one("housekeeping.due", (tx.now, tx.now - locks.EXPIRED_KEPT_MS)) is not None


def sweep(tx: Tx) -> None:
    """The sweep, unless the transaction already ran it (`Store._apply`)."""
    if not tx.swept:
        messages.sweep(tx)
        locks.sweep(tx)
        tx.swept = True

"""Reading the audit log (writing is `Tx.event`)."""

from __future__ import annotations

from teamroom.schemas import Event, EventsResult
from teamroom.store.tx import Tx, iso, loads


def events(tx: Tx, after_id: int, limit: int, agent: str | None, kinds: list[str] | None) -> EventsResult:
    """Events after ``after_id`` in order; with ``after_id`` < 0, the newest ``limit`` (still in order)."""
    params = (after_id, agent, tx.array(kinds) if kinds else None, limit)
    rows = tx.all("events.newest", params[1:]) if after_id < 0 else tx.all("events.after", params)
    return EventsResult(
        events=[
            Event(
                id=r["id"],
                at=iso(r["at"]),
                agent=r["agent"],
                kind=r["kind"],
                subject=r["subject"],
                data=loads(r["data"]),
            )
            for r in rows
        ]
    )

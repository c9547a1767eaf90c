"""Reading the audit log (writing is `Tx.event`)."""

from __future__ import annotations

from teamroom.schemas import Event, EventsResult
from teamroom.store.tx import Tx, in_list, iso, loads


def events(tx: Tx, after_id: int, limit: int, agent: str | None, kinds: list[str] | None) -> EventsResult:
    """Events after ``after_id`` in order; with ``after_id`` < 0, the newest ``limit`` (still in order)."""
    kind_sql, kind_params = in_list("kind", kinds)
    agent_sql, agent_params = ("", []) if agent is None else (" AND agent = ?", [agent])
    where = f"WHERE id > ?{agent_sql}{kind_sql}"
    if after_id < 0:
        sql = f"SELECT * FROM (SELECT * FROM events {where} ORDER BY id DESC LIMIT ?) ORDER BY id"
        after_id = 0
    else:
        sql = f"SELECT * FROM events {where} ORDER BY id LIMIT ?"
    rows = tx.all(sql, (after_id, *agent_params, *kind_params, limit))
    return EventsResult(
        events=[
            Event(
                id=r["id"], at=iso(r["at"]), agent=r["agent"], kind=r["kind"], subject=r["subject"],
                data=loads(r["data"]),
            )  # fmt: skip
            for r in rows
        ]
    )

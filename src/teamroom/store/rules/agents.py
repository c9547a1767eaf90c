"""Agents: registration, liveness and heartbeats."""

from __future__ import annotations

from teamroom.errors import NotFound
from teamroom.schemas import AgentEntry, AgentRecord, AgentsResult
from teamroom.store.rules import locks
from teamroom.store.tx import Tx, dumps, iso, loads

LIVE_MS = 2 * 60 * 1000
STALE_MS = 15 * 60 * 1000


def liveness(now: int, last_seen: int) -> str:
    age = now - last_seen
    return "live" if age < LIVE_MS else "stale" if age < STALE_MS else "offline"


def record(row) -> AgentRecord:
    return AgentRecord(
        name=row["name"], role=row["role"], capabilities=loads(row["capabilities"]), description=row["description"]
    )


def register(tx: Tx, agent: str, role: str | None, capabilities: list[str] | None, description: str | None):
    tx.touch(agent)
    tx.run("agents.register", (agent, role, None if capabilities is None else dumps(capabilities), description))
    row = tx.one("agents.record", (agent,))
    tx.event(agent, "register", agent, role=row["role"], capabilities=loads(row["capabilities"]))
    return record(row)


def set_status(tx: Tx, agent: str, status: str | None, task: str | None, note: str | None) -> None:
    """Update what the agent says it is doing; logged only when something changed."""
    tx.touch(agent)
    if status is None and task is None and note is None:
        return
    if tx.run("agents.set_status", (agent, status, task, note)):
        tx.event(agent, "status", agent, status=status, task=task, note=note)


def known_names(tx: Tx) -> list[str]:
    return [r[0] for r in tx.all("agents.names")]


def exists(tx: Tx, name: str) -> bool:
    return tx.one("agents.exists", (name,)) is not None


def require(tx: Tx, name: str) -> None:
    if not exists(tx, name):
        raise NotFound(f"no agent named {name!r}; known agents: {', '.join(known_names(tx)) or 'none yet'}")


def queue_counts(tx: Tx) -> dict[str, tuple[int, int]]:
    """{recipient: (unread, leased)}: deliveries it can poll now, and those under a live lease."""
    rows = tx.all(
        "SELECT recipient, SUM(state = 'queued' OR visible_at <= ?1), SUM(state = 'leased' AND visible_at > ?1)"
        " FROM deliveries WHERE state IN ('queued', 'leased') GROUP BY recipient",
        (tx.now,),
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def list_agents(
    tx: Tx, agent: str | None, role: str | None, capability: str | None, include_offline: bool
) -> AgentsResult:
    if agent is not None:
        tx.touch(agent)
    sql, params = "SELECT * FROM agents WHERE 1", []
    if role is not None:
        sql, params = sql + " AND role = ?", [*params, role]
    if capability is not None:
        sql += " AND EXISTS (SELECT 1 FROM json_each(capabilities) WHERE value = ?)"
        params.append(capability)
    if not include_offline:
        sql, params = sql + " AND last_seen > ?", [*params, tx.now - STALE_MS]
    queues, held = queue_counts(tx), locks.holders(tx)
    entries = [
        AgentEntry(
            **record(row).model_dump(),
            status=row["status"],
            task=row["task"],
            note=row["note"],
            last_seen=iso(row["last_seen"]),
            liveness=liveness(tx.now, row["last_seen"]),
            locks=held.get(row["name"], []),
            unread=queues.get(row["name"], (0, 0))[0],
            leased=queues.get(row["name"], (0, 0))[1],
        )
        for row in tx.all(sql + " ORDER BY name", params)
    ]
    return AgentsResult(agents=entries)

"""Agents: registration, liveness and heartbeats."""

from __future__ import annotations

from teamroom.errors import NotFound
from teamroom.schemas import AgentEntry, AgentRecord, AgentsResult
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


def list_agents(
    tx: Tx, agent: str | None, role: str | None, capability: str | None, include_offline: bool
) -> AgentsResult:
    """The agents asked for, by name; only their own deliveries are counted and their own locks read
    (a store's bulk, such as a parked handoff's locks or an offline agent's backlog, costs nothing here)."""
    if agent is not None:
        tx.touch(agent)
    since = None if include_offline else tx.now - STALE_MS
    rows = tx.all("agents.list", (tx.now, role, capability, since))
    held: dict[str, list[str]] = {}
    if rows:
        for lock in tx.all("agents.locks", (tx.array(row["name"] for row in rows), tx.now)):
            held.setdefault(lock["holder"], []).append(lock["resource"])
    entries = [
        AgentEntry(
            **record(row).model_dump(),
            status=row["status"],
            task=row["task"],
            note=row["note"],
            last_seen=iso(row["last_seen"]),
            liveness=liveness(tx.now, row["last_seen"]),
            locks=held.get(row["name"], []),
            unread=row["unread"],
            leased=row["leased"],
        )
        for row in rows
    ]
    return AgentsResult(agents=entries)

"""register, heartbeat, agents."""

from __future__ import annotations

from teamroom.schemas import AgentsResult, HeartbeatResult, RegisterResult
from teamroom.schemas.common import Limits
from teamroom.store import Store
from teamroom.tools import _check

STATUSES = ("idle", "working", "blocked", "done")


async def register(
    store: Store,
    agent: str | None,
    role: str | None = None,
    capabilities: list[str] | None = None,
    description: str | None = None,
    session_id: str | None = None,
) -> RegisterResult:
    """Create or update the caller's record; fields left out keep their values.

    ``session_id`` (from the server's environment, never from the agent) binds that client session
    to the agent, so the session's hooks know whose news to show.
    """
    agent = _check.agent_name(agent)
    role = _check.label("role", role, 64)
    capabilities = _check.labels("capabilities", capabilities, 32, 64)
    description = _check.text("description", description, Limits.SHORT_TEXT_CHARS)
    session_id = _check.label("session_id", session_id)
    return RegisterResult(agent=await store.register(agent, role, capabilities, description, session_id))


async def heartbeat(
    store: Store, agent: str | None, status: str | None = None, task: str | None = None, note: str | None = None
) -> HeartbeatResult:
    """Say you are alive (and what you are doing); renews every lease and lock you hold."""
    agent = _check.agent_name(agent)
    status = _check.one_of("status", status, STATUSES)
    task = _check.text("task", task, Limits.SHORT_TEXT_CHARS)
    note = _check.text("note", note, Limits.SHORT_TEXT_CHARS)
    return await store.heartbeat(agent, status, task, note)


async def agents(
    store: Store,
    agent: str | None,
    role: str | None = None,
    capability: str | None = None,
    include_offline: bool = False,
) -> AgentsResult:
    """Who is here: every agent seen in the last 15 minutes (or ever, with include_offline)."""
    caller = None if agent is None else _check.agent_name(agent)
    return await store.agents(
        caller, _check.label("role", role, 64), _check.label("capability", capability, 64), bool(include_offline)
    )

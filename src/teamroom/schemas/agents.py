"""Agents and liveness."""

from __future__ import annotations

from pydantic import Field

from teamroom.schemas.common import AgentStatus, Liveness, Model


class AgentRecord(Model):
    name: str
    role: str | None = None
    capabilities: list[str] = []
    description: str | None = None


class RegisterResult(Model):
    agent: AgentRecord


class AgentEntry(AgentRecord):
    status: AgentStatus | None = None
    task: str | None = None
    note: str | None = None
    last_seen: str
    liveness: Liveness
    locks: list[str] = []
    unread: int = 0
    leased: int = 0  # deliveries it holds under a live lease, not yet acked


class AgentsResult(Model):
    agents: list[AgentEntry]


class HeartbeatResult(Model):
    unread: int
    locks: list[str]
    leases_renewed: int
    server_time: str
    board_unread: dict[str, int] = Field(
        {}, description="new board entries per scope you posted to or read (scopes with none are left out)"
    )

"""Pydantic models for everything that crosses the wire: tool results and resource bodies."""

from teamroom.schemas.agents import AgentEntry, AgentRecord, AgentsResult, HeartbeatResult, RegisterResult
from teamroom.schemas.events import Event, EventsResult
from teamroom.schemas.messages import (
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

__all__ = [
    "AckResult",
    "AgentEntry",
    "AgentRecord",
    "AgentsResult",
    "Delivery",
    "Event",
    "EventsResult",
    "HeartbeatResult",
    "InboxMessage",
    "InboxResult",
    "LeasedMessage",
    "NackResult",
    "PollResult",
    "RegisterResult",
    "SendResult",
    "ThreadMessage",
    "ThreadResult",
]

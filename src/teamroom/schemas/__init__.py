"""Pydantic models for everything that crosses the wire: tool results and resource bodies."""

from teamroom.schemas.agents import AgentEntry, AgentRecord, AgentsResult, HeartbeatResult, RegisterResult
from teamroom.schemas.board import BoardEntry, PostResult, ReadBoardResult
from teamroom.schemas.events import Event, EventsResult
from teamroom.schemas.handoffs import HandoffRecord, HandoffResult, ResumeResult
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
    "BoardEntry",
    "Delivery",
    "Event",
    "EventsResult",
    "HandoffRecord",
    "HandoffResult",
    "HeartbeatResult",
    "InboxMessage",
    "InboxResult",
    "LeasedMessage",
    "NackResult",
    "PollResult",
    "PostResult",
    "ReadBoardResult",
    "RegisterResult",
    "ResumeResult",
    "SendResult",
    "ThreadMessage",
    "ThreadResult",
]

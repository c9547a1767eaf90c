"""Shared vocabulary: enums, limits and the base model every result uses."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Priority = Literal["low", "normal", "high", "urgent"]
AgentStatus = Literal["idle", "working", "blocked", "done"]
Liveness = Literal["live", "stale", "offline"]
DeliveryState = Literal["queued", "leased", "acked", "dead", "expired"]
MessageKind = Literal[
    "text", "question", "answer", "status", "result", "dispatch", "assign", "worker_done",
    "merge_ready", "merged", "merge_failed", "escalation", "health_check", "decision_gate",
    "handoff", "delivery_failed",
]  # fmt: skip

PRIORITIES: dict[str, int] = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
PRIORITY_NAMES: dict[int, str] = {v: k for k, v in PRIORITIES.items()}
MESSAGE_KINDS: tuple[str, ...] = MessageKind.__args__  # type: ignore[attr-defined]

SYSTEM_AGENT = "teamroom"  # the sender of delivery_failed notices


class Limits:
    """SPEC.md §5, in one place."""

    BODY_BYTES = 64 * 1024
    PAYLOAD_BYTES = 64 * 1024
    TITLE_CHARS = 200
    RESOURCES = 100
    TAGS = 32
    LEASE_SECONDS = (1, 86_400)
    TTL_SECONDS = (1, 86_400)
    MESSAGE_TTL_SECONDS = (1, 30 * 86_400)
    WAIT_SECONDS = (0, 50)
    LIMIT = (1, 100)
    BOARD_LIMIT = (1, 500)
    MAX_ATTEMPTS = (1, 100)
    RECIPIENTS = 1000
    SHORT_TEXT_CHARS = 4096  # description, note, task, reason


class Model(BaseModel):
    """Base for results: serialised by alias so a field can be named ``from``."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

"""The audit log."""

from __future__ import annotations

from typing import Any

from teamroom.schemas.common import Model


class Event(Model):
    id: int
    at: str
    agent: str | None
    kind: str
    subject: str | None
    data: dict[str, Any] | None


class EventsResult(Model):
    events: list[Event]

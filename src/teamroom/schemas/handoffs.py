"""Handoffs: the state of a task, passed to the next agent (or to yourself after a crash)."""

from __future__ import annotations

from pydantic import Field

from teamroom.schemas.common import Model
from teamroom.schemas.locks import LockEntry


class HandoffRecord(Model):
    handoff_id: str
    from_: str = Field(alias="from")
    task: str
    summary: str
    next_step: str
    done: list[str]
    remaining: list[str]
    blockers: list[str]
    files: list[str]
    branch: str | None
    scope: str | None
    locks: list[str] = Field(description="resources held for whoever resumes this handoff")
    to: list[str] = Field(description="the agents it was addressed to, if any")
    created_at: str
    taken_by: str | None
    taken_at: str | None


class HandoffResult(Model):
    handoff_id: str
    recipients: list[str]
    message_id: str | None = Field(None, description="the handoff message sent to the recipients")
    locks: list[str] = Field([], description="your locks, now held for whoever resumes it")


class ResumeResult(Model):
    handoff: HandoffRecord
    resumed_before: bool = Field(False, description="true when you had taken it before (a crash): nothing changed")
    locks: list[LockEntry] = Field([], description="the locks transferred with it, now yours, with new greater tokens")

"""Messages, deliveries and threads."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from teamroom.schemas.common import DeliveryState, Model, Priority


class SendResult(Model):
    message_id: str
    thread_id: str
    recipients: list[str]
    duplicate: bool = Field(False, description="true when idempotency_key matched an earlier send")


class LeasedMessage(Model):
    receipt: str
    message_id: str
    from_: str = Field(alias="from")
    to: list[str]
    subject: str | None
    body: str
    kind: str
    payload: dict[str, Any] | None
    priority: Priority
    thread_id: str
    reply_to: str | None
    attempt: int
    max_attempts: int
    lease_expires_at: str
    sent_at: str


class PollResult(Model):
    messages: list[LeasedMessage]
    acked: int = Field(0, description="receipts acked first by this call (poll's ack)")


class AckResult(Model):
    acked: int


class NackResult(Model):
    state: DeliveryState
    attempt: int


class Delivery(Model):
    to: str
    state: DeliveryState
    attempt: int


class ThreadMessage(Model):
    message_id: str
    from_: str = Field(alias="from")
    subject: str | None
    body: str
    kind: str
    payload: dict[str, Any] | None
    priority: Priority
    reply_to: str | None
    sent_at: str
    deliveries: list[Delivery]


class ThreadResult(Model):
    thread_id: str
    messages: list[ThreadMessage]


class InboxMessage(ThreadMessage):
    """A message waiting for one agent, seen without leasing it."""

    thread_id: str
    state: DeliveryState
    attempt: int


class InboxResult(Model):
    agent: str
    messages: list[InboxMessage]

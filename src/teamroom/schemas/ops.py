"""What the operator's commands return (SPEC.md §9): retention, stats, dead letters and forced changes."""

from __future__ import annotations

from pydantic import Field

from teamroom.schemas.common import Liveness, Model


class GcResult(Model):
    dry_run: bool
    retention_days: float
    cutoff: str = Field(description="what finished (or happened) before this time is gone")
    deliveries: int = Field(description="finished deliveries deleted (acked, dead, expired)")
    messages: int = Field(description="messages deleted: every delivery of each had finished and gone")
    events: int = Field(description="audit events copied to the archive, then deleted")
    archive: str | None = Field(None, description="the directory the events went to")
    seconds: float


class AgentStats(Model):
    name: str
    known: bool = Field(description="false for a recipient no agent record names (forgotten)")
    role: str | None
    liveness: Liveness | None
    queued: int = Field(description="deliveries it could poll: queued, or a lapsed lease")
    leased: int
    dead: int
    oldest_queued_at: str | None = Field(description="when the oldest message it could poll was sent")
    oldest_queued_seconds: float | None
    locks: int = Field(description="live locks it holds")


class EventStats(Model):
    count: int
    first_id: int | None
    last_id: int | None
    oldest_at: str | None
    archived_through: int = Field(description="every event up to this id was copied to the archive")


class StoreSize(Model):
    path: str
    bytes: int = Field(description="the store file and its write-ahead log")
    free_bytes: int = Field(description="pages inside the file that new rows reuse (VACUUM would return them)")
    archive: str | None
    archive_bytes: int


class StatsResult(Model):
    agents: list[AgentStats]
    deliveries: dict[str, int] = Field(description="every stored delivery, by state")
    messages: int
    locks: int = Field(description="live locks")
    events: EventStats
    store: StoreSize | None = None


class DeadLetter(Model):
    message_id: str
    to: str
    from_: str = Field(alias="from")
    subject: str | None
    kind: str
    attempts: int
    max_attempts: int
    reason: str | None
    died_at: str
    sent_at: str
    thread_id: str


class DeadResult(Model):
    dead: list[DeadLetter]
    total: int = Field(description="dead deliveries in all (of the agent asked for), listed or not")


class Redriven(Model):
    message_id: str
    to: str
    attempts: int = Field(description="the attempts it had when it died; it starts again from 0")


class RedriveResult(Model):
    redriven: list[Redriven]
    skipped: list[Redriven] = Field(description="dead deliveries to recipients no longer known (forgotten)")


class ReleasedLock(Model):
    resource: str
    holder: str
    mode: str
    token: int
    expired: bool


class ForceReleaseResult(Model):
    released: list[ReleasedLock]


class ForgetResult(Model):
    agent: str
    dead: int = Field(description="its queued and leased deliveries, now dead letters (their senders told)")
    released: list[str] = Field(description="the locks it held, released")

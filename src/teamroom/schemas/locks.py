"""Locks: claims, releases and the list of live locks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from teamroom.schemas.common import Model

LockMode = Literal["exclusive", "shared"]


class GrantedLock(Model):
    resource: str = Field(description="normal form, e.g. 'src/auth/**'")
    mode: LockMode
    token: int = Field(description="fencing token: grows with every grant; pass it with the writes it guards")
    expires_at: str
    renewed: bool = Field(False, description="you already held it: same token, later expiry")
    took_over_from: str | None = Field(None, description="holder of an expired lock this grant replaced")


class LockConflict(Model):
    resource: str = Field(description="the lock in the way")
    held_by: str
    mode: LockMode
    reason: str | None = None
    expires_at: str
    requested: str = Field(description="which of your resources it blocks")
    example: str | None = Field(None, description="a path both match, when the two resources differ")


class ClaimResult(Model):
    granted: bool
    locks: list[GrantedLock] = []
    conflicts: list[LockConflict] = []
    more_conflicts: int = Field(0, description="conflicts beyond the 50 listed, counted up to 200 (200: at least)")


class ReleaseResult(Model):
    released: list[str]


class LockEntry(Model):
    resource: str
    holder: str
    mode: LockMode
    token: int
    reason: str | None = None
    acquired_at: str
    expires_at: str


class LocksResult(Model):
    locks: list[LockEntry]
    more: int = Field(0, description="live locks beyond limit, not listed")

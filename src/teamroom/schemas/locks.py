"""Locks: claims, releases and the list of live locks."""

from __future__ import annotations

from typing import Literal

from teamroom.schemas.common import Model

LockMode = Literal["exclusive", "shared"]


class GrantedLock(Model):
    resource: str  # normal form
    mode: LockMode
    token: int  # fencing token: pass it along with every write the lock protects
    expires_at: str
    renewed: bool = False  # you already held it: same token, later expiry
    took_over_from: str | None = None  # the holder of an expired lock this grant replaced


class LockConflict(Model):
    resource: str  # the lock in the way
    held_by: str
    mode: LockMode
    reason: str | None = None
    expires_at: str
    requested: str  # which of your resources it blocks
    example: str | None = None  # a path both match, when they are not the same resource


class ClaimResult(Model):
    granted: bool
    locks: list[GrantedLock] = []
    conflicts: list[LockConflict] = []
    more_conflicts: int = 0  # conflicts beyond those listed


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
    more: int = 0  # live locks beyond ``limit``, not listed

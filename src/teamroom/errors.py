"""Domain errors: one base class, one subclass per stable code of docs/CONTRACT.md.

The text of every error starts with its code so an agent (or a script) can branch on it,
and goes on to say how to fix the call. The server turns these into MCP tool errors.
"""

from __future__ import annotations


class TeamroomError(Exception):
    """Something went wrong."""

    code = "error"

    def __init__(self, message: str | None = None) -> None:
        self.detail = message or (self.__doc__ or "").strip()
        super().__init__(f"{self.code}: {self.detail}")


class Invalid(TeamroomError):
    """The arguments are malformed or out of range; fix them and call again."""

    code = "invalid"


class NotFound(TeamroomError):
    """No such agent, message, receipt, thread, entry, handoff or lock."""

    code = "not_found"


class NotOwner(TeamroomError):
    """That belongs to another agent."""

    code = "not_owner"


class LeaseExpired(TeamroomError):
    """The lease behind this receipt expired or was re-leased; poll again for a fresh receipt."""

    code = "lease_expired"


class Conflict(TeamroomError):
    """The request conflicts with the current state."""

    code = "conflict"


class TooLarge(TeamroomError):
    """The input is larger than the limit allows; send less or split it."""

    code = "too_large"


class Forbidden(TeamroomError):
    """The caller is not allowed to do that."""

    code = "forbidden"


class StoreUnavailable(TeamroomError):
    """The store cannot be opened or used; the message says why and what to do."""

    code = "unavailable"

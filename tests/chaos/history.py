"""The recorded history of a chaos run: every call with its outcome, plus the kills and restarts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SPEC_CODES = ("invalid", "not_found", "not_owner", "lease_expired", "conflict", "too_large", "forbidden")


@dataclass(eq=False)
class Op:
    """One tool call as the caller saw it.

    ``outcome`` is ``ok`` (``result`` holds the structured result), ``fail`` (a tool error; ``error``
    holds its text) or ``info`` (no answer: the server died or the call timed out, so it may or may
    not have taken effect).
    """

    worker: str
    node: int
    tool: str
    args: dict[str, Any]
    invoked: float
    completed: float = 0.0
    outcome: str = "info"
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def code(self) -> str | None:
        return None if self.error is None or self.outcome != "fail" else self.error.split(":", 1)[0]


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    kills: int = 0
    spawns: int = 0
    spawn_failures: list[str] = field(default_factory=list)
    node_errors: list[str] = field(default_factory=list)
    drained: bool = False
    drain_seconds: float = 0.0

    def ok(self, tool: str) -> list[Op]:
        return [op for op in self.ops if op.tool == tool and op.outcome == "ok"]

    def outcomes(self) -> Counter[str]:
        return Counter(f"{op.tool}:{op.outcome}" for op in self.ops)

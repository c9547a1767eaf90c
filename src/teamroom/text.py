"""Text for people and agents to read: one line, clipped. Standard library only (the hooks use it)."""

from __future__ import annotations


def clip(text: str | None, width: int) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``width`` characters with an ellipsis."""
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"

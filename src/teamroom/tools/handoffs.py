"""handoff and resume: pass a task's state to the next agent, or to yourself after a crash."""

from __future__ import annotations

import json

from teamroom.errors import Invalid, TooLarge
from teamroom.schemas import HandoffResult, ResumeResult
from teamroom.schemas.common import Limits
from teamroom.store import Store
from teamroom.tools import _check
from teamroom.tools.board import scope_name

ITEMS = 100  # entries in done, remaining, blockers, files
PATH_CHARS = 1024


def _items(field: str, value: str | list[str] | None) -> list[str]:
    """A list of short texts; one string is a list of one."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or len(values) > ITEMS:
        raise Invalid(f"{field} must be a string or a list of at most {ITEMS} strings")
    return [_check.text(f"{field}[{i}]", v, Limits.SHORT_TEXT_CHARS, required=True) for i, v in enumerate(values)]


async def handoff(
    store: Store,
    agent: str | None,
    task: str,
    summary: str,
    next_step: str,
    to: str | list[str] | None = None,
    done: str | list[str] | None = None,
    remaining: str | list[str] | None = None,
    blockers: str | list[str] | None = None,
    files: list[str] | None = None,
    branch: str | None = None,
    scope: str | None = None,
    transfer_locks: bool | None = None,
) -> HandoffResult:
    """Write down where a task stands; with ``to``, the recipients get it as a ``handoff`` message."""
    agent = _check.agent_name(agent)
    task = _check.label("task", task, 200)
    if task is None:
        raise Invalid("task is required: name the task being handed off, e.g. 'refresh-token-fix'")
    summary = _check.text("summary", summary, 0, required=True, max_bytes=Limits.BODY_BYTES)
    next_step = _check.text("next_step", next_step, 0, required=True, max_bytes=Limits.BODY_BYTES)
    fields = {
        "done": _items("done", done),
        "remaining": _items("remaining", remaining),
        "blockers": _items("blockers", blockers),
        "files": _check.labels("files", files, ITEMS, PATH_CHARS) or [],
        "branch": _check.label("branch", branch, 256),
        "scope": scope_name(scope, None),
    }
    size = len(json.dumps([task, summary, next_step, fields], ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > Limits.PAYLOAD_BYTES:
        raise TooLarge(
            f"the handoff is {size} bytes; the limit is {Limits.PAYLOAD_BYTES} (64 KiB): summarise, and put the"
            " details on the board (post_finding) or in files"
        )
    return await store.handoff(agent, task, summary, next_step, fields, _check.addresses(to), bool(transfer_locks))


async def resume(
    store: Store, agent: str | None, task: str | None = None, handoff_id: str | None = None
) -> ResumeResult:
    """Take a handoff: the one named, the newest for ``task``, or the newest for you (addressed, or your own)."""
    agent = _check.agent_name(agent)
    return await store.resume(agent, _check.label("task", task, 200), _check.label("handoff_id", handoff_id, 32))

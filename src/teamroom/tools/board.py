"""post_finding and read_board: a shared, append-only board of findings per workflow scope."""

from __future__ import annotations

from teamroom.errors import Invalid
from teamroom.schemas import PostResult, ReadBoardResult
from teamroom.schemas.board import BOARD_KINDS
from teamroom.schemas.common import Limits
from teamroom.store import Store
from teamroom.tools import _check

DEFAULT_SCOPE = "main"
REF_CHARS = 2048  # a ref is a path, an id or a URL


def scope_name(value: str | None, default: str | None = DEFAULT_SCOPE) -> str | None:
    """A scope is a short label; no '/', so that teamroom://board/{scope} can name it."""
    if value is None:
        return default
    _check.label("scope", value, 64)
    if "/" in value:
        raise Invalid(f"scope {value!r} contains '/'; use a short label such as 'auth-review' or 'issue-42'")
    return value


async def post_finding(
    store: Store,
    agent: str | None,
    body: str,
    title: str | None = None,
    scope: str | None = None,
    kind: str | None = None,
    tags: list[str] | None = None,
    refs: list[str] | None = None,
    supersedes: str | None = None,
) -> PostResult:
    """Append an entry to a scope's board; the first post opens the scope and makes its author the owner."""
    agent = _check.agent_name(agent)
    return await store.post_finding(
        agent,
        _check.text("body", body, 0, required=True, max_bytes=Limits.BODY_BYTES),
        title=_check.text("title", title, Limits.TITLE_CHARS),
        scope=scope_name(scope, None),
        kind=_check.one_of("kind", kind, BOARD_KINDS),
        tags=_check.labels("tags", tags, Limits.TAGS, 64) or [],
        refs=_check.labels("refs", refs, Limits.RESOURCES, REF_CHARS) or [],
        supersedes=_check.label("supersedes", supersedes, 32),
    )


async def read_board(
    store: Store,
    agent: str | None,
    scope: str | None = None,
    since: int | None = None,
    kinds: list[str] | None = None,
    author: str | None = None,
    tags: list[str] | None = None,
    limit: int | None = None,
    include_superseded: bool | None = None,
) -> ReadBoardResult:
    """Without since: what ``agent`` has not read yet, marked read. With since (or for agent None): a plain read."""
    caller = None if agent is None else _check.agent_name(agent)
    if kinds is not None:
        kinds = [_check.one_of("kinds", k, BOARD_KINDS) for k in _check.labels("kinds", kinds, len(BOARD_KINDS))]
    since = _check.whole("since", since, (0, 2**62))
    return await store.read_board(
        caller,
        scope_name(scope),
        since=0 if caller is None and since is None else since,
        kinds=kinds or None,
        author=None if author is None else _check.agent_name(author, "author"),
        tags=_check.labels("tags", tags, Limits.TAGS, 64) or None,
        limit=_check.whole("limit", limit, Limits.BOARD_LIMIT, 50),
        include_superseded=bool(include_superseded),
    )

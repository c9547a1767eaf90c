"""The findings board: append-only entries in scopes, and each agent's read position.

A scope is opened by its first post, whose author owns it and alone posts ``decision`` entries.
``seq`` counts entries within a scope. What an agent has read in a scope is its cursor (every
entry up to that seq) plus the entries past it that a filtered read returned; the cursor moves
on over every entry that is read, superseded or the agent's own, so "unread" never skips an entry
the agent has not been shown.
"""

from __future__ import annotations

from typing import Any

from teamroom.errors import Conflict, Forbidden, Invalid, NotFound, NotOwner
from teamroom.schemas import BoardEntry, PostResult, ReadBoardResult
from teamroom.store.rules import common
from teamroom.store.tx import Tx, dumps, iso, loads, parse_ref


def entry_ref(entry_id: int) -> str:
    return f"e{entry_id}"


def parse_entry_ref(ref: str) -> int:
    return parse_ref(ref, "e", "board entry", "entry ids look like 'e12' (the id field of post_finding)")


def _entry(row: Any) -> BoardEntry:
    return BoardEntry(
        id=entry_ref(row["id"]),
        seq=row["seq"],
        scope=row["scope"],
        author=row["author"],
        kind=row["kind"],
        title=row["title"],
        body=row["body"],
        tags=loads(row["tags"]),
        refs=loads(row["refs"]),
        supersedes=None if row["supersedes"] is None else entry_ref(row["supersedes"]),
        superseded_by=None if row["superseded_by"] is None else entry_ref(row["superseded_by"]),
        posted_at=iso(row["posted_at"]),
    )


def _follow(tx: Tx, agent: str, scope: str) -> int:
    """The agent's cursor in ``scope``, created at 0: heartbeat reports unread entries of followed scopes."""
    tx.run("board.follow", (agent, scope))
    return tx.one("board.cursor", (agent, scope))[0]


def _owner(tx: Tx, scope: str) -> str | None:
    row = tx.one("board.owner", (scope,))
    return None if row is None else row[0]


def _head(tx: Tx, scope: str) -> int:
    return tx.one("board.head", (scope,))[0]


# --- posting --------------------------------------------------------------------------------


def post(
    tx: Tx,
    agent: str,
    body: str,
    title: str | None,
    scope: str | None,
    kind: str | None,
    tags: list[str],
    refs: list[str],
    supersedes: str | None,
) -> PostResult:
    tx.touch(agent)
    replaced_id = None
    if supersedes is not None:
        replaced = _replaceable(tx, agent, supersedes, scope)
        replaced_id, scope, kind = replaced["id"], scope or replaced["scope"], kind or replaced["kind"]
    scope, kind = scope or common.DEFAULT_SCOPE, kind or "finding"
    owner = _owner(tx, scope)
    if owner is None:
        owner = agent
        tx.run("board.open_scope", (scope, agent, tx.now))
        tx.event(agent, "scope_opened", scope)
    if kind == "decision" and owner != agent:
        raise Forbidden(
            f"only {owner!r}, who opened scope {scope!r}, posts decisions there; post your proposal as"
            " kind='finding' or 'question', or send it to them"
        )
    seq = _head(tx, scope) + 1
    row = (scope, seq, agent, kind, title, body, dumps(tags), dumps(refs), replaced_id, tx.now)
    entry_id = tx.one("board.post", row)[0]
    _follow(tx, agent, scope)
    ref = entry_ref(entry_id)
    tx.event(agent, "post", ref, scope=scope, seq=seq, kind=kind, supersedes=replaced_id and entry_ref(replaced_id))
    return PostResult(id=ref, seq=seq, scope=scope, owner=owner)


def _replaceable(tx: Tx, agent: str, ref: str, scope: str | None) -> dict[str, Any]:
    """The caller's own entry that ``ref`` names, if nothing has replaced it yet."""
    row = tx.one("board.replaceable", (parse_entry_ref(ref),))
    if row is None:
        raise NotFound(f"no board entry {ref!r} to supersede; use an id from post_finding or read_board")
    if row["author"] != agent:
        raise NotOwner(
            f"{ref!r} is {row['author']!r}'s entry; supersede only your own (post a new entry and put {ref!r} in refs)"
        )
    if scope is not None and scope != row["scope"]:
        raise Invalid(f"{ref!r} is in scope {row['scope']!r}, not {scope!r}; drop scope or pass {row['scope']!r}")
    if row["superseded_by"] is not None:
        raise Conflict(
            f"{ref!r} was already superseded by {entry_ref(row['superseded_by'])!r}; supersede that one instead"
        )
    return dict(row)


# --- reading --------------------------------------------------------------------------------


def read(
    tx: Tx,
    agent: str | None,
    scope: str,
    since: int | None,
    kinds: list[str] | None,
    author: str | None,
    tags: list[str] | None,
    limit: int,
    include_superseded: bool,
) -> ReadBoardResult:
    """Without ``since`` (and with an agent): the agent's unread entries, marked read. With it: a plain read."""
    position = 0
    if agent is not None:
        tx.touch(agent)
        position = _follow(tx, agent, scope)
    unread_only = since is None and agent is not None
    query, start = ("board.unread_entries", position) if unread_only else ("board.entries_since", since or 0)
    filters = (tx.array(kinds) if kinds else None, author, tx.array(tags) if tags else None)  # None: not given
    rows = tx.all(query, (agent or "", scope, start, *filters, include_superseded, limit))
    entries = [_entry(r) for r in rows]
    if unread_only:
        cursor = position = _mark_read(tx, agent, scope, position, [e.seq for e in entries])
        if entries:
            tx.event(agent, "board_read", scope, seqs=[e.seq for e in entries][:100], cursor=position)
    else:
        # Read on from the last entry returned, or from the head when nothing more matched.
        cursor = entries[-1].seq if len(entries) == limit else max(since or 0, _head(tx, scope))
    unread = None
    if agent is not None:
        unread = common.board_unread(tx, agent, scope, position)["unread"]
    return ReadBoardResult(scope=scope, owner=_owner(tx, scope), entries=entries, cursor=cursor, unread=unread)


def _mark_read(tx: Tx, agent: str, scope: str, cursor: int, seqs: list[int]) -> int:
    """Mark ``seqs`` read and move the cursor over every entry that no longer counts as unread."""
    tx.many("board.mark_read", [(agent, scope, s) for s in seqs])
    first_unread = common.board_unread(tx, agent, scope, cursor)["first"]
    moved = _head(tx, scope) if first_unread is None else first_unread - 1
    if moved > cursor:
        tx.run("board.move_cursor", (agent, scope, moved))
        tx.run("board.forget_reads", (agent, scope, moved))
    return max(moved, cursor)


def unread_by_scope(tx: Tx, agent: str) -> dict[str, int]:
    """New entries for ``agent`` in every scope it follows (posted to or read), where there are any."""
    return {r[0]: r[1] for r in tx.all("board.unread_by_scope", (agent,))}

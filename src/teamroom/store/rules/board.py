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
from teamroom.store.tx import Tx, dumps, in_list, iso, loads, parse_ref


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
    tx.execute("INSERT OR IGNORE INTO board_cursors (agent, scope, seq) VALUES (?, ?, 0)", (agent, scope))
    return tx.one("SELECT seq FROM board_cursors WHERE agent = ? AND scope = ?", (agent, scope))[0]


def _owner(tx: Tx, scope: str) -> str | None:
    row = tx.one("SELECT owner FROM board_scopes WHERE name = ?", (scope,))
    return None if row is None else row[0]


def _head(tx: Tx, scope: str) -> int:
    return tx.one("SELECT COALESCE(MAX(seq), 0) FROM board_entries WHERE scope = ?", (scope,))[0]


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
        tx.execute("INSERT INTO board_scopes (name, owner, opened_at) VALUES (?, ?, ?)", (scope, agent, tx.now))
        tx.event(agent, "scope_opened", scope)
    if kind == "decision" and owner != agent:
        raise Forbidden(
            f"only {owner!r}, who opened scope {scope!r}, posts decisions there; post your proposal as"
            " kind='finding' or 'question', or send it to them"
        )
    seq = _head(tx, scope) + 1
    entry_id = tx.one(
        "INSERT INTO board_entries (scope, seq, author, kind, title, body, tags, refs, supersedes, posted_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (scope, seq, agent, kind, title, body, dumps(tags), dumps(refs), replaced_id, tx.now),
    )[0]
    _follow(tx, agent, scope)
    ref = entry_ref(entry_id)
    tx.event(agent, "post", ref, scope=scope, seq=seq, kind=kind, supersedes=replaced_id and entry_ref(replaced_id))
    return PostResult(id=ref, seq=seq, scope=scope, owner=owner)


def _replaceable(tx: Tx, agent: str, ref: str, scope: str | None) -> dict[str, Any]:
    """The caller's own entry that ``ref`` names, if nothing has replaced it yet."""
    row = tx.one(
        "SELECT e.id, e.scope, e.author, e.kind, (SELECT s.id FROM board_entries s WHERE s.supersedes = e.id)"
        " AS superseded_by FROM board_entries e WHERE e.id = ?",
        (parse_entry_ref(ref),),
    )
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
    where = f"e.scope = ?2 AND e.seq > ?3{f' AND {common.BOARD_UNREAD}' if unread_only else ''}"
    params = [agent or "", scope, position if unread_only else since or 0]
    if not include_superseded:
        where += f" AND NOT {common.SUPERSEDED}"
    kind_sql, kind_params = in_list("e.kind", kinds)
    tag_sql, tag_params = in_list("t.value", tags)
    if tags:
        tag_sql = f" AND EXISTS (SELECT 1 FROM json_each(e.tags) t WHERE 1{tag_sql})"
    author_sql, author_params = ("", []) if author is None else (" AND e.author = ?", [author])
    rows = tx.all(
        "SELECT e.*, (SELECT s.id FROM board_entries s WHERE s.supersedes = e.id) AS superseded_by"
        f" FROM board_entries e WHERE {where}{kind_sql}{tag_sql}{author_sql} ORDER BY e.seq LIMIT ?",
        (*params, *kind_params, *tag_params, *author_params, limit),
    )
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
        unread = tx.one(
            f"SELECT COUNT(*) FROM board_entries e WHERE e.scope = ?2 AND e.seq > ?3 AND {common.BOARD_UNREAD}",
            (agent, scope, position),
        )[0]
    return ReadBoardResult(scope=scope, owner=_owner(tx, scope), entries=entries, cursor=cursor, unread=unread)


def _mark_read(tx: Tx, agent: str, scope: str, cursor: int, seqs: list[int]) -> int:
    """Mark ``seqs`` read and move the cursor over every entry that no longer counts as unread."""
    tx.conn.executemany(
        "INSERT OR IGNORE INTO board_reads (agent, scope, seq) VALUES (?, ?, ?)", [(agent, scope, s) for s in seqs]
    )
    first_unread = tx.one(
        f"SELECT MIN(e.seq) FROM board_entries e WHERE e.scope = ?2 AND e.seq > ?3 AND {common.BOARD_UNREAD}",
        (agent, scope, cursor),
    )[0]
    moved = _head(tx, scope) if first_unread is None else first_unread - 1
    if moved > cursor:
        tx.execute("UPDATE board_cursors SET seq = ? WHERE agent = ? AND scope = ?", (moved, agent, scope))
        tx.execute("DELETE FROM board_reads WHERE agent = ? AND scope = ? AND seq <= ?", (agent, scope, moved))
    return max(moved, cursor)


def unread_by_scope(tx: Tx, agent: str) -> dict[str, int]:
    """New entries for ``agent`` in every scope it follows (posted to or read), where there are any."""
    rows = tx.all(
        "SELECT e.scope, COUNT(*) FROM board_cursors c JOIN board_entries e ON e.scope = c.scope AND e.seq > c.seq"
        f" WHERE c.agent = ?1 AND {common.BOARD_UNREAD} GROUP BY e.scope ORDER BY e.scope",
        (agent,),
    )
    return {r[0]: r[1] for r in rows}

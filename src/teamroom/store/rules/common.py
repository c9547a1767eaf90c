"""Rules that the tools' SQL and the hooks' digest both apply, written once.

Standard library only: the hooks import this on every prompt (see `teamroom.store.sqlite.direct`).
"""

from __future__ import annotations

from teamroom.store.tx import Tx

# A delivery that may still be handed out. Queries repeat this term literally so that SQLite uses
# the partial indexes over live rows (0001_core.sql).
LIVE = "('queued', 'leased')"

# Board: an entry e is hidden from reads (unless asked for) once a later entry supersedes it.
SUPERSEDED = "EXISTS (SELECT 1 FROM board_entries s WHERE s.supersedes = e.id)"
# Board: entry e past agent ?1's cursor still counts as unread: not its own, not superseded, not read.
BOARD_UNREAD = (
    f"e.author != ?1 AND NOT {SUPERSEDED}"
    " AND NOT EXISTS (SELECT 1 FROM board_reads r WHERE r.agent = ?1 AND r.scope = e.scope AND r.seq = e.seq)"
)
DEFAULT_SCOPE = "main"


def addresses(agent: str, role: str | None, capabilities: list[str]) -> set[str]:
    """Every way a handoff's ``to`` can name ``agent``: its name, '@role', '@roles' (as send resolves)."""
    groups = {*capabilities, *([role] if role else [])}
    return {agent, *(f"@{g}" for g in groups), *(f"@{g}s" for g in groups)}


def handed_on(tx: Tx, agent: str, task: str, handoff_id: int) -> bool:
    """Whether ``agent`` wrote a handoff for ``task`` newer than ``handoff_id`` (which is then stale for it)."""
    row = tx.one("SELECT 1 FROM handoffs WHERE task = ? AND sender = ? AND id > ?", (task, agent, handoff_id))
    return row is not None

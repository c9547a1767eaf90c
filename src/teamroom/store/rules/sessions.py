"""Sessions: which agent a client session speaks for, and what the hooks last showed it.

A Claude Code session gives its MCP servers its id (``CLAUDE_CODE_SESSION_ID``) and gives its
hooks the same id on stdin; binding the two is how a hook knows whose inbox to read when
``TEAMROOM_AGENT`` is not set. This module imports only the standard library: the hooks use it.
"""

from __future__ import annotations

from typing import Any

from teamroom.store.tx import Tx, dumps, loads


def available(tx: Tx) -> bool:
    """Whether the store has the sessions table yet (a store older than migration 0004 has not)."""
    return tx.one("sessions.available") is not None


def bind(tx: Tx, session_id: str, agent: str, client: str | None, *, replace: bool) -> bool:
    """Bind ``session_id`` to ``agent``; True when that changed anything.

    The first agent that registers through a session's server keeps the session
    (``replace=False``: a subagent sharing its parent's server does not take it over); a hook
    that knows the agent from ``TEAMROOM_AGENT`` is authoritative (``replace=True``).
    """
    row = tx.one("sessions.agent", (session_id,))
    if row is not None and (row[0] == agent or not replace):
        return False
    tx.run("sessions.bind", (session_id, agent, client, tx.now))
    tx.event(agent, "session_bound", session_id, client=client, previous=None if row is None else row[0])
    return True


def lookup(tx: Tx, session_id: str) -> tuple[str, dict[str, Any]] | None:
    """The agent bound to ``session_id`` and what the hooks last showed it, or None."""
    row = tx.one("sessions.lookup", (session_id,))
    return None if row is None else (row[0], loads(row[1]) or {})


def remember_shown(tx: Tx, session_id: str, agent: str, shown: dict[str, Any]) -> None:
    """Record what a hook just put in front of the session (hook bookkeeping, not coordination state:
    no audit event)."""
    tx.run("sessions.remember_shown", (session_id, agent, dumps(shown)))


# --- the hooks' verbs (`DirectStore.look`, `DirectStore.remember`) --------------------------------


def look(tx: Tx, env_agent: str | None, session: str | None, top: int) -> tuple[str, dict, dict, bool] | None:
    """Who the agent is (``TEAMROOM_AGENT``, else the agent bound to ``session``), what that session was
    last shown, its digest now, and whether the store can remember what is shown (it has sessions)."""
    from teamroom.store.rules import digest  # digest reads several areas; imported where it is used

    has_sessions = available(tx)
    bound = lookup(tx, session) if session is not None and has_sessions else None
    agent = env_agent or (bound[0] if bound else None)
    if agent is None:
        return None
    shown = bound[1] if bound is not None and bound[0] == agent else {}
    return agent, shown, digest.digest(tx, agent, top), has_sessions


def remember(tx: Tx, session: str, agent: str, client: str, from_env: bool, shown: dict[str, Any]) -> None:
    if from_env:
        bind(tx, session, agent, client, replace=True)
    remember_shown(tx, session, agent, shown)

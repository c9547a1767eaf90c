"""``teamroom hook claude|codex``: what pushes news into an agent's context.

An MCP server cannot put anything in front of the model (MCP-NOTES.md); a client's hooks can.
Claude Code and Codex run a command on ``SessionStart``, ``UserPromptSubmit`` and ``Stop`` with a
JSON object on stdin (``session_id``, ``cwd``, ``hook_event_name``) and read back
``hookSpecificOutput.additionalContext`` or a ``{"decision": "block"}``; both speak the same wire.

- SessionStart: everything that waits for the agent (its context is new).
- UserPromptSubmit: the same, but only when something is new since the session was last told.
- Stop: blocks once while the agent holds locks or unacked leases, saying what to release.

The agent is ``TEAMROOM_AGENT`` when set, else the agent that registered through this session's
server (see `teamroom.store.rules.sessions`). It runs on every prompt, so it imports only the
standard library (no mcp, rich, anyio or pydantic), and it never lets an error reach the agent:
any failure prints nothing on stdout and one line on stderr, and exits 0.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable, Mapping
from typing import Any

from teamroom.config import ENV_MESSAGE_ID, Settings
from teamroom.store import open_direct
from teamroom.text import clip

CONTEXT_EVENTS = ("SessionStart", "UserPromptSubmit")
EVENTS = (*CONTEXT_EVENTS, "Stop")
TOP = 3  # message subjects shown
CLIENTS = ("claude", "codex")


def main(client: str, event: str | None = None) -> int:
    """Read the hook's JSON on stdin, print the answer (or nothing); always exit 0."""
    try:
        raw = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
        answer = respond(client, raw, os.environ, event=event)
    except Exception as exc:  # the agent must never see a traceback; the human finds this on stderr
        print(f"teamroom hook {client}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 0
    if answer:
        sys.stdout.write(answer + "\n")
    return 0


def respond(
    client: str,
    raw: str,
    environ: Mapping[str, str],
    *,
    event: str | None = None,
    now_ms: Callable[[], int] | None = None,
) -> str | None:
    """The hook's stdout for this input, or None to say nothing."""
    hook = json.loads(raw) if raw.strip() else {}
    if not isinstance(hook, dict):
        return None
    event = event or hook.get("hook_event_name")
    if event not in EVENTS:
        return None
    cwd = hook.get("cwd") if isinstance(hook.get("cwd"), str) and os.path.isdir(hook["cwd"]) else None
    settings = Settings.resolve(cwd=cwd, environ=dict(environ))
    store = open_direct(settings.db_path, durability=settings.durability, now_ms=now_ms)
    if store is None:
        return None
    session = hook.get("session_id") if isinstance(hook.get("session_id"), str) and hook["session_id"] else None
    with store:
        seen = store.look(settings.default_agent, session, TOP)
        if seen is None:
            return None
        agent, shown, news, can_remember = seen
        if event == "Stop":
            answer, shown = _stop(news, shown, bool(hook.get("stop_hook_active")), environ.get(ENV_MESSAGE_ID))
        else:
            answer, shown = _context(event, news, shown)
        if answer is not None and session is not None and can_remember:
            try:
                store.remember(session, agent, client, settings.default_agent is not None, shown)
            except sqlite3.OperationalError as exc:  # a store busy past the timeout: tell now, maybe again later
                print(f"teamroom hook {client}: not remembered: {exc}", file=sys.stderr)
        return answer


# --- SessionStart and UserPromptSubmit ---------------------------------------------------------


def marks(news: dict[str, Any]) -> dict[str, Any]:
    """What this news consists of, in a form that tells new from already shown."""
    return {
        "message": news["messages"]["newest"] if news["messages"]["count"] else 0,
        "locks": {lock["resource"]: lock["expires_at"] for lock in news.get("locks", []) if lock["expiring"]},
        "board": {scope["scope"]: scope["newest"] for scope in news.get("board", [])},
        "handoff": max((h["seq"] for h in news.get("handoffs", [])), default=0),
    }


def is_new(now: dict[str, Any], shown: dict[str, Any]) -> bool:
    old_locks, old_board = shown.get("locks") or {}, shown.get("board") or {}
    return (
        now["message"] > (shown.get("message") or 0)
        or any(old_locks.get(resource) != expires for resource, expires in now["locks"].items())
        or any(newest > old_board.get(scope, 0) for scope, newest in now["board"].items())
        or now["handoff"] > (shown.get("handoff") or 0)
    )


def _context(event: str, news: dict[str, Any], shown: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    if event == "SessionStart":
        shown = {}  # a new context has seen nothing
    else:  # its own checkpoint matters to a fresh context (after a crash or /clear), not on every prompt
        news = {**news, "handoffs": [h for h in news.get("handoffs", []) if h["from"] != news["agent"]]}
    now = marks(news)
    text = render(news, shown)
    if text is None or (shown and not is_new(now, shown)):
        return None, shown
    remembered = {
        **shown,
        "message": max(now["message"], shown.get("message") or 0),
        "locks": now["locks"],
        "board": {**(shown.get("board") or {}), **now["board"]},
        "handoff": max(now["handoff"], shown.get("handoff") or 0),
    }
    answer = {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}
    return json.dumps(answer, ensure_ascii=False), remembered


def render(news: dict[str, Any], shown: dict[str, Any]) -> str | None:
    """The additionalContext text, or None when nothing waits."""
    lines: list[str] = []
    unread = news["messages"]
    if unread["count"]:
        seen_up_to = shown.get("message") or 0
        listed = list(unread["top"])  # the most urgent, then anything new they leave out
        listed += [m for m in unread["latest"] if m["delivery"] > seen_up_to and m not in listed][:TOP]
        s = "" if unread["count"] == 1 else "s"
        lines.append(f"- {unread['count']} unread message{s}; poll to lease them, ack each when handled:")
        for m in listed:
            urgency = "" if m["priority"] == "normal" else f"[{m['priority']}] "
            new = " new" if shown and m["delivery"] > seen_up_to else ""
            lines.append(f"  - {urgency}{m['from']}: {_quote(m['subject'])} ({m['kind']}, {m['message_id']}{new})")
        if unread["count"] > len(listed):
            lines.append(f"  - and {unread['count'] - len(listed)} more")
    for scope in news.get("board", []):
        s, name = ("y" if scope["unread"] == 1 else "ies"), scope["scope"]
        lines.append(f"- {scope['unread']} unread board entr{s} in scope {name!r}; read_board(scope={name!r}):")
        for entry in scope["top"]:
            lines.append(f"  - #{entry['seq']} {entry['kind']} by {entry['author']}: {_quote(entry['title'])}")
    for lock in news.get("locks", []):
        if lock["expiring"]:
            left = _duration((lock["expires_at"] - news["now"]) / 1000)
            lines.append(
                f"- Your lock on {lock['resource']} expires in {left}: heartbeat renews it; release_lock when done."
            )
    for handoff in news.get("handoffs", []):
        mine = handoff["from"] == news["agent"]
        who = "your own checkpoint" if mine else f"from {handoff['from']}"
        lines.append(
            f"- A handoff waits for you ({who}): task {_quote(handoff['task'])},"
            f" next step {_quote(handoff['next_step'])}; resume(handoff_id={handoff['handoff_id']!r}) takes it."
        )
    if not lines:
        return None
    return f"teamroom, for agent {news['agent']}:\n" + "\n".join(lines)


# --- Stop --------------------------------------------------------------------------------------


def _stop(
    news: dict[str, Any], shown: dict[str, Any], already_blocked: bool, worker_job: str | None = None
) -> tuple[str | None, dict[str, Any]]:
    """Block once per set of holdings: the agent may have good reason to keep them.

    ``worker_job``: the message a `teamroom worker` started this agent for; the worker holds its
    lease and acks it when the agent's command exits, so it is not the agent's to ack.
    """
    locks = [lock["resource"] for lock in news.get("locks", [])]
    leases = [lease for lease in news["leases"] if lease["message_id"] != worker_job]
    holding = sorted([f"lock:{r}" for r in locks] + [f"lease:{lease['message_id']}" for lease in leases])
    if already_blocked or not holding or set(holding) <= set(shown.get("stop") or []):
        return None, shown
    parts = []
    if locks:
        s = "" if len(locks) == 1 else "s"
        parts.append(
            f"you hold {len(locks)} lock{s} ({_some(locks)}): release_lock when done, or"
            " handoff(..., transfer_locks=true) to pass them on"
        )
    if leases:
        s = "" if len(leases) == 1 else "s"
        held = _some([f"{lease['message_id']} from {lease['from']}" for lease in leases])
        parts.append(f"you hold {len(leases)} leased message{s} not yet acked ({held}): ack when handled, or nack")
    reason = "teamroom: before you stop, " + "; and ".join(parts) + ". Or stop now if you mean to keep them."
    return json.dumps({"decision": "block", "reason": reason}, ensure_ascii=False), {**shown, "stop": holding}


# --- text helpers ------------------------------------------------------------------------------


def _quote(text: str | None, width: int = 80) -> str:
    return json.dumps(clip(text, width), ensure_ascii=False)


def _some(items: list[str], shown: int = 3) -> str:
    head = ", ".join(items[:shown])
    return head if len(items) <= shown else f"{head} and {len(items) - shown} more"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60} s"

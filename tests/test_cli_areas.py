"""Locks, board and handoffs as a human and a hook see them."""

from __future__ import annotations

import json
import time

from teamroom import hooks
from teamroom.cli import main
from teamroom.tools import board, handoffs, locks
from tests.test_hooks import act, ask, context, hook_input, team


def claim(db, agent: str, resources: list[str], ttl: int = 900) -> None:

    async def go(store):
        assert (await locks.claim_lock(store, agent, resources, ttl_seconds=ttl, reason="work")).granted

    act(db, go)


def post(db, agent: str, body: str, **options) -> None:

    async def go(store):
        await board.post_finding(store, agent, body, **options)

    act(db, go)


def test_the_hook_warns_of_a_lock_about_to_expire_and_not_of_one_with_time_left(db_path):
    team(db_path)
    claim(db_path, "builder-1", ["src/auth/**"], ttl=60)
    claim(db_path, "builder-1", ["docs/*.md"], ttl=900)
    text = context(ask(db_path, "SessionStart"))
    assert "Your lock on src/auth/** expires in" in text
    assert "docs/*.md" not in text


def test_a_lock_newly_close_to_its_end_is_news_on_the_next_prompt(db_path):
    team(db_path)
    claim(db_path, "builder-1", ["src/app.py"], ttl=900)
    environ = {"TEAMROOM_DB": str(db_path), "TEAMROOM_AGENT": "builder-1"}
    now = time.time_ns() // 1_000_000
    assert hooks.respond("claude", hook_input("UserPromptSubmit"), environ, now_ms=lambda: now) is None
    later = now + 14 * 60 * 1000  # one minute left
    answer = json.loads(hooks.respond("claude", hook_input("UserPromptSubmit"), environ, now_ms=lambda: later))
    assert "Your lock on src/app.py expires in" in answer["hookSpecificOutput"]["additionalContext"]
    assert hooks.respond("claude", hook_input("UserPromptSubmit"), environ, now_ms=lambda: later + 1000) is None


def test_stop_blocks_while_the_agent_holds_a_lock_and_names_it(db_path):
    team(db_path)
    claim(db_path, "builder-1", ["src/a.py", "src/b/**"])
    answer = ask(db_path, "Stop", stop_hook_active=False)
    assert answer["decision"] == "block"
    assert "you hold 2 locks (src/a.py, src/b/**)" in answer["reason"]
    assert ask(db_path, "Stop", stop_hook_active=False) is None, "once"

    async def release(store):
        await locks.release_lock(store, "builder-1")

    act(db_path, release)
    claim(db_path, "builder-1", ["src/a.py"])
    assert ask(db_path, "Stop", stop_hook_active=False) is None, "holding less than it was told about"


def test_the_hook_counts_unread_board_entries_as_read_board_does_and_forgets_them_once_read(db_path):
    team(db_path)
    post(db_path, "lead", "the login loop is the cookie path", title="cookie path")
    post(db_path, "builder-2", "CI is red", kind="status")
    post(db_path, "builder-1", "my own note", kind="note")
    post(db_path, "lead", "elsewhere", scope="release-1")
    text = context(ask(db_path, "SessionStart"))
    assert "2 unread board entries in scope 'main'" in text and "release-1" not in text
    assert '"cookie path"' in text and "my own note" not in text

    async def read(store):
        return await board.read_board(store, "builder-1")

    assert len(act(db_path, read).entries) == 2, "the hook's count is the board's own"
    assert ask(db_path, "SessionStart") is None


def test_a_handoff_addressed_to_the_agents_role_waits_until_resumed(db_path):
    team(db_path)

    async def hand(store):
        return (
            await handoffs.handoff(store, "lead", "migrate docs", "half done", "finish api.md", to="@builders")
        ).handoff_id

    handoff_id = act(db_path, hand)
    text = context(ask(db_path, "SessionStart"))
    assert f"resume(handoff_id={handoff_id!r})" in text and '"migrate docs"' in text

    async def take(store):
        await handoffs.resume(store, "builder-1", handoff_id=handoff_id)

    act(db_path, take)
    answer = ask(db_path, "SessionStart")  # the handoff message itself may still wait, unpolled
    assert answer is None or "resume(handoff_id" not in context(answer)


def test_an_agents_own_checkpoint_is_shown_to_a_fresh_context_only(db_path):
    team(db_path)
    assert ask(db_path, "SessionStart") is None

    async def checkpoint(store):
        await handoffs.handoff(store, "builder-1", "refactor auth", "tests green", "split login.py")

    act(db_path, checkpoint)
    assert ask(db_path, "UserPromptSubmit") is None, "not news on every prompt"
    assert "your own checkpoint" in context(ask(db_path, "SessionStart", source="clear"))


def test_locks_and_board_commands_show_the_live_state_and_move_no_cursor(db_path, capsys):
    team(db_path)
    claim(db_path, "builder-1", ["src/auth/**"])
    post(db_path, "lead", "first finding")
    post(db_path, "lead", "second finding", tags=["ci"])
    assert main(["locks", "--db", str(db_path)]) == 0
    locks = json.loads(capsys.readouterr().out)["locks"]
    assert [(lock["resource"], lock["holder"], lock["mode"]) for lock in locks] == [
        ("src/auth/**", "builder-1", "exclusive")
    ]
    assert main(["locks", "src/auth/login.py", "--db", str(db_path)]) == 0
    assert len(json.loads(capsys.readouterr().out)["locks"]) == 1, "a path under the glob overlaps it"
    assert main(["board", "--tag", "ci", "--db", str(db_path)]) == 0
    assert [e["body"] for e in json.loads(capsys.readouterr().out)["entries"]] == ["second finding"]
    assert main(["status", "--db", str(db_path)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [e["body"] for e in status["board"]] == ["first finding", "second finding"]
    assert [lock["resource"] for lock in status["locks"]] == ["src/auth/**"]

    async def unread(store):
        return await board.read_board(store, "builder-1")

    assert len(act(db_path, unread).entries) == 2, "the human's reads moved no agent's cursor"


def test_handing_off_with_the_locks_lets_the_agent_stop_and_the_recipient_hears_of_it(db_path):
    team(db_path)
    claim(db_path, "builder-1", ["src/auth/**"])
    assert ask(db_path, "Stop", stop_hook_active=False, session="before")["decision"] == "block"

    async def hand_off(store):
        return await handoffs.handoff(
            store, "builder-1", "fix login", "cause found", "patch the cookie path", to="builder-2", transfer_locks=True
        )

    handed = act(db_path, hand_off)
    assert handed.locks == ["src/auth/**"]
    assert ask(db_path, "Stop", stop_hook_active=False, session="after") is None, "it holds nothing now"
    text = context(ask(db_path, "SessionStart", agent="builder-2"))
    assert f"resume(handoff_id={handed.handoff_id!r})" in text

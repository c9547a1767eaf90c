"""The README's worker recipes (examples/worker/) run as written: the wake scripts through a real worker.

`claude` and `codex` here are stand-ins on PATH that record what they were given and answer; the
real clients need a login and a session, so this checks the plumbing (arguments, the prompt on
stdin, the answer as the reply), not the clients.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from teamroom.store import open_store
from teamroom.tools import agents as agent_tools
from teamroom.tools import messages as message_tools

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "worker"
STAND_IN = """#!/bin/sh
printf '%s\\n' "$@" > "$0.args"
cat > "$0.stdin"
printf 'done: %s as %s' "$TEAMROOM_MESSAGE_ID" "$TEAMROOM_AGENT"
"""


@pytest.mark.processes
@pytest.mark.anyio
async def test_the_wake_scripts_resume_the_session_with_the_message_and_reply_with_its_answer(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for client in ("claude", "codex"):
        (bin_dir / client).write_text(STAND_IN)
        (bin_dir / client).chmod(0o755)
    db = tmp_path / "teamroom.db"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "TEAMROOM_AGENT": ""}
    async with open_store(db) as store:
        for name in ("lead", "builder-1", "builder-2"):
            await agent_tools.register(store, name)
        sent = {
            "builder-1": await message_tools.send(store, "lead", "builder-1", "fix tests/test_a.py"),
            "builder-2": await message_tools.send(store, "lead", "builder-2", "document src/b.py"),
        }
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "teamroom", "worker", agent, "--db", str(db), "--", str(EXAMPLES / script),
                 "SESSION-1", *extra],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            )  # fmt: skip
            for agent, script, extra in (
                ("builder-1", "wake-claude.sh", ("--permission-mode", "acceptEdits")),
                ("builder-2", "wake-codex.sh", ()),
            )
        ]
        try:
            replies = {}
            with anyio.fail_after(30):
                for agent, message in sent.items():
                    while True:
                        token = store.change_token()  # before looking, so a commit in between still wakes us
                        thread = await message_tools.thread(store, None, message.thread_id)
                        if len(thread.messages) >= 2:
                            break
                        await store.wait_for_change(token, 0.5)
                    replies[agent] = thread.messages[1]
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
                worker.communicate(timeout=30)
    for agent, message in sent.items():
        assert replies[agent].kind == "result" and replies[agent].body == f"done: {message.message_id} as {agent}"
    claude, codex = ((bin_dir / f"{c}.args").read_text().splitlines() for c in ("claude", "codex"))
    assert claude == [
        "-p", "--resume", "SESSION-1", "--permission-mode", "acceptEdits", "--allowedTools", "mcp__teamroom",
    ]  # fmt: skip
    assert codex == ["exec", "resume", "SESSION-1", "-"]
    for client, agent in (("claude", "builder-1"), ("codex", "builder-2")):
        prompt = (bin_dir / f"{client}.stdin").read_text()
        head, _, message = prompt.partition("The message, as JSON:\n")
        assert f"for you ({agent}) from lead, id {sent[agent].message_id}" in head and "do not poll or ack" in head
        assert json.loads(message)["message_id"] == sent[agent].message_id


def test_the_reviewer_script_reviews_the_files_a_message_names(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "broken.py").write_text("def f(x):  \n    return x +\n")
    (tmp_path / "src" / "fine.py").write_text("x = 1\n")

    def review(body: str, payload: dict | None = None) -> str:
        message = {"message_id": "m7", "body": body, "payload": payload}
        run = subprocess.run(
            [sys.executable, str(EXAMPLES / "reviewer.py")], input=json.dumps(message), capture_output=True,
            text=True, cwd=tmp_path, env={**os.environ, "PATH": os.path.dirname(sys.executable)}, check=True,
        )  # fmt: skip
        return run.stdout

    found = review("please review src/broken.py and src/fine.py")
    assert found.startswith("Reviewed src/broken.py, src/fine.py:")
    assert "src/broken.py:2: does not compile" in found and "src/broken.py:1: trailing whitespace" in found
    assert review("see", {"files": ["src/fine.py"]}) == "Reviewed src/fine.py: nothing to report.\n"
    assert review("nothing named here").startswith("No file to review")

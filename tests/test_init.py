"""``teamroom init``: one command wires a project up for Claude Code or Codex, merging, never clobbering."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from teamroom.cli import main
from teamroom.errors import Invalid
from teamroom.init import CODEX_TOOL_TIMEOUT_S, HOOK_EVENTS, init

COMMAND = ["teamroom"]


def hook_commands(settings: dict, event: str) -> list[str]:
    return [h["command"] for group in settings["hooks"][event] for h in group["hooks"]]


def test_init_claude_writes_the_server_and_the_three_hooks_and_a_second_run_changes_nothing(tmp_path):
    report = init("claude", tmp_path, COMMAND)
    assert report.changed
    mcp = json.loads((tmp_path / ".mcp.json").read_text())
    assert mcp == {"mcpServers": {"teamroom": {"type": "stdio", "command": "teamroom", "args": ["serve"]}}}
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    for event in HOOK_EVENTS:
        assert hook_commands(settings, event) == ["teamroom hook claude"]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = init("claude", tmp_path, COMMAND)
    assert not again.changed and "nothing to change" in again.lines[-1]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_init_claude_merges_into_the_projects_own_settings_and_keeps_all_of_them(tmp_path):
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"github": {"command": "gh-mcp"}}, "x": 1}))
    own = {
        "permissions": {"allow": ["Bash(npm test)"]},
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "make lint"}]}]},
    }
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps(own))
    init("claude", tmp_path, COMMAND)
    mcp = json.loads((tmp_path / ".mcp.json").read_text())
    assert mcp["mcpServers"]["github"] == {"command": "gh-mcp"} and mcp["x"] == 1 and "teamroom" in mcp["mcpServers"]
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    assert settings["permissions"] == own["permissions"]
    assert hook_commands(settings, "Stop") == ["make lint", "teamroom hook claude"]


def test_init_keeps_a_teamroom_server_the_user_configured_and_says_so(tmp_path):
    mine = {"mcpServers": {"teamroom": {"command": "teamroom", "args": ["serve"], "env": {"TEAMROOM_AGENT": "ann"}}}}
    (tmp_path / ".mcp.json").write_text(json.dumps(mine))
    report = init("claude", tmp_path, COMMAND)
    assert json.loads((tmp_path / ".mcp.json").read_text()) == mine
    assert any(line.startswith("kept: .mcp.json") for line in report.lines)


def test_init_refuses_a_file_it_cannot_parse_and_writes_nothing(tmp_path):
    (tmp_path / ".mcp.json").write_text("{not json")
    with pytest.raises(Invalid, match=r"\.mcp\.json is not valid JSON .*nothing was changed"):
        init("claude", tmp_path, COMMAND)
    assert (tmp_path / ".mcp.json").read_text() == "{not json"
    assert not (tmp_path / ".claude").exists()


def test_init_codex_appends_the_server_table_and_keeps_the_rest_byte_for_byte(tmp_path):
    (tmp_path / ".codex").mkdir()
    own = '# my settings\nmodel = "gpt-5"\n\n[mcp_servers.github]\ncommand = "gh-mcp"\n'
    (tmp_path / ".codex" / "config.toml").write_text(own)
    report = init("codex", tmp_path, COMMAND)
    text = (tmp_path / ".codex" / "config.toml").read_text()
    assert text.startswith(own)
    config = tomllib.loads(text)
    server = config["mcp_servers"]["teamroom"]
    assert (server["command"], server["args"]) == ("teamroom", ["serve"])
    assert server["tool_timeout_sec"] == CODEX_TOOL_TIMEOUT_S > 50, "above the longest blocking wait"
    assert "TEAMROOM_AGENT" in server["env_vars"]
    assert config["mcp_servers"]["github"] == {"command": "gh-mcp"} and config["model"] == "gpt-5"
    hooks = json.loads((tmp_path / ".codex" / "hooks.json").read_text())
    assert set(hooks) == {"hooks"}, "codex refuses unknown top-level keys in hooks.json"
    for event in HOOK_EVENTS:
        assert hook_commands(hooks, event) == ["teamroom hook codex"]
    assert report.changed
    assert not init("codex", tmp_path, COMMAND).changed
    assert (tmp_path / ".codex" / "config.toml").read_text() == text


def test_init_codex_will_not_guess_around_an_inline_mcp_servers_table(tmp_path):
    (tmp_path / ".codex").mkdir()
    own = 'mcp_servers = { github = { command = "gh-mcp" } }\n'
    (tmp_path / ".codex" / "config.toml").write_text(own)
    with pytest.raises(Invalid, match="by hand"):
        init("codex", tmp_path, COMMAND)
    assert (tmp_path / ".codex" / "config.toml").read_text() == own


def _bin_dir() -> str:
    """Where the command init writes lives: a client runs it with its own PATH, which has it."""
    found = shutil.which("teamroom")
    return os.path.dirname(found) if found else os.path.dirname(sys.executable)


def test_the_init_command_prints_what_it_changed_and_the_hook_it_wrote_runs(tmp_path, capsys, db_path):
    assert main(["init", "claude", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "added: .mcp.json mcpServers.teamroom" in out and "added: .claude/settings.json hooks" in out
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    command = hook_commands(settings, "UserPromptSubmit")[0]
    done = subprocess.run(
        command,
        shell=True,
        input=json.dumps({"hook_event_name": "UserPromptSubmit", "session_id": "s", "cwd": str(tmp_path)}),
        capture_output=True,
        text=True,
        env={"TEAMROOM_DB": str(db_path), "TEAMROOM_AGENT": "nobody", "PATH": f"{_bin_dir()}:/usr/bin:/bin"},
        timeout=30,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert main(["init", "claude", "--dir", str(tmp_path)]) == 0
    assert "nothing to change" in capsys.readouterr().out


def test_dry_run_says_what_would_change_and_writes_nothing(tmp_path, capsys):
    assert main(["init", "codex", "--dir", str(tmp_path), "--dry-run"]) == 0
    assert "would change" in capsys.readouterr().out
    assert list(Path(tmp_path).iterdir()) == []

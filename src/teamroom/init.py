"""``teamroom init claude|codex``: wire teamroom into a project's client settings in one command.

Merges into what is there and never clobbers: keys it does not own are kept as they are, an
entry of the user's own under teamroom's name is kept and reported, a file it cannot parse is
left alone with an error. Running it again changes nothing. Each write is atomic (a temporary
file renamed over the old one).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teamroom.config import ENV_AGENT, ENV_DB, ENV_DURABILITY
from teamroom.errors import Invalid
from teamroom.hooks import EVENTS as HOOK_EVENTS

HOOK_TIMEOUT_S = 10
# Codex kills a tool call after tool_timeout_sec (default 60); the longest blocking wait is 50 s.
CODEX_TOOL_TIMEOUT_S = 120
CODEX_STARTUP_TIMEOUT_S = 20
FORWARDED_ENV = [ENV_AGENT, ENV_DB, ENV_DURABILITY]


@dataclass
class Report:
    """What init did, one line per file or entry."""

    project: Path
    lines: list[str] = field(default_factory=list)
    changed: bool = False

    def note(self, text: str, *, changed: bool = False) -> None:
        self.lines.append(text)
        self.changed = self.changed or changed


def teamroom_command() -> list[str]:
    """How the client should start teamroom: the ``teamroom`` on PATH, else this interpreter's module."""
    return ["teamroom"] if shutil.which("teamroom") else [sys.executable, "-m", "teamroom"]


def project_dir(start: Path) -> Path:
    """The top of the git work tree around ``start`` (the project the client opens), else ``start``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return start
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else start


def init(client: str, project: Path, command: list[str] | None = None, *, dry_run: bool = False) -> Report:
    command = command or teamroom_command()
    report = Report(project)
    if client == "claude":
        _merge_mcp_json(project / ".mcp.json", command, report, dry_run)
        _merge_hooks(project / ".claude" / "settings.json", command, "claude", report, dry_run)
    elif client == "codex":
        _merge_codex_toml(project / ".codex" / "config.toml", command, report, dry_run)
        _merge_hooks(project / ".codex" / "hooks.json", command, "codex", report, dry_run)
    else:
        raise Invalid(f"unknown client {client!r}: use claude or codex")
    if not report.changed:
        report.note("nothing to change: teamroom is already set up here")
    return report


# --- JSON files (Claude Code's .mcp.json and settings.json, Codex's hooks.json) -----------------


def _load_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as exc:
        raise Invalid(
            f"{path} is not valid JSON ({exc}); fix or move it, then run init again (nothing was changed)"
        ) from None
    if not isinstance(data, dict):
        raise Invalid(f"{path} holds a JSON {type(data).__name__}, not an object; fix or move it (nothing was changed)")
    return data


def _write(path: Path, text: str, dry_run: bool) -> None:
    if dry_run:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.teamroom-tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _section(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.setdefault(key, {})
    if not isinstance(value, dict):
        raise Invalid(f"{path}: {key!r} is not an object; fix it by hand (nothing was changed)")
    return value


def _merge_mcp_json(path: Path, command: list[str], report: Report, dry_run: bool) -> None:
    data = _load_json(path)
    servers = _section(data, "mcpServers", path)
    wanted = {"type": "stdio", "command": command[0], "args": [*command[1:], "serve"]}
    name = _rel(path, report)
    if "teamroom" in servers:
        if servers["teamroom"] == wanted:
            report.note(f"unchanged: {name} mcpServers.teamroom")
        else:
            report.note(f"kept: {name} has its own mcpServers.teamroom (delete it and run init again for the default)")
        return
    servers["teamroom"] = wanted
    _write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", dry_run)
    report.note(f"added: {name} mcpServers.teamroom = {shlex.join([*command, 'serve'])}", changed=True)


def _is_our_hook(handler: Any, client: str) -> bool:
    return isinstance(handler, dict) and str(handler.get("command", "")).rstrip().endswith(f"hook {client}")


def _merge_hooks(path: Path, command: list[str], client: str, report: Report, dry_run: bool) -> None:
    data = _load_json(path)
    hooks = _section(data, "hooks", path)
    line = shlex.join([*command, "hook", client])
    added = []
    for event in HOOK_EVENTS:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise Invalid(f"{path}: hooks.{event} is not a list; fix it by hand (nothing was changed)")
        if any(_is_our_hook(h, client) for g in groups if isinstance(g, dict) for h in g.get("hooks") or []):
            continue
        groups.append({"hooks": [{"type": "command", "command": line, "timeout": HOOK_TIMEOUT_S}]})
        added.append(event)
    name = _rel(path, report)
    if not added:
        report.note(f"unchanged: {name} hooks {', '.join(HOOK_EVENTS)}")
        return
    _write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", dry_run)
    report.note(f"added: {name} hooks {', '.join(added)} -> {line}", changed=True)


# --- Codex's config.toml ----------------------------------------------------------------------


def _merge_codex_toml(path: Path, command: list[str], report: Report, dry_run: bool) -> None:
    """Append a ``[mcp_servers.teamroom]`` table; the rest of the file stays byte for byte."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Invalid(f"{path} is not valid TOML ({exc}); fix it, then run init again (nothing was changed)") from None
    name = _rel(path, report)
    servers = data.get("mcp_servers", {})
    if isinstance(servers, dict) and "teamroom" in servers:
        report.note(f"unchanged: {name} already has [mcp_servers.teamroom] (kept as it is)")
        return

    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    block = (
        "# Added by `teamroom init codex`. tool_timeout_sec stays above teamroom's longest blocking wait (50 s);\n"
        "# env_vars forwards TEAMROOM_AGENT (who this Codex is) and the store settings to the server.\n"
        "[mcp_servers.teamroom]\n"
        f"command = {json.dumps(command[0])}\n"
        f"args = {toml_list([*command[1:], 'serve'])}\n"
        f"env_vars = {toml_list(FORWARDED_ENV)}\n"
        f"startup_timeout_sec = {CODEX_STARTUP_TIMEOUT_S}\n"
        f"tool_timeout_sec = {CODEX_TOOL_TIMEOUT_S}\n"
    )
    merged = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text.strip() else "") + block
    try:
        check = tomllib.loads(merged)["mcp_servers"]["teamroom"]
        assert check["command"] == command[0]
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AssertionError):
        raise Invalid(
            f"{path} defines mcp_servers in a form a new table cannot join (an inline table?); add"
            f" [mcp_servers.teamroom] with command = {json.dumps(command[0])} by hand (nothing was changed)"
        ) from None
    _write(path, merged, dry_run)
    report.note(
        f"added: {name} [mcp_servers.teamroom] = {shlex.join([*command, 'serve'])},"
        f" tool_timeout_sec = {CODEX_TOOL_TIMEOUT_S}",
        changed=True,
    )


def _rel(path: Path, report: Report) -> str:
    try:
        return str(path.relative_to(report.project))
    except ValueError:
        return str(path)

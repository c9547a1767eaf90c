"""``teamroom doctor``: why can't my agent see teamroom?

It says where the store is and which rule chose it, whether the store opens (schema version,
integrity), and goes through every client config that could start teamroom: Claude Code's
``.mcp.json``, ``~/.claude.json`` (user and local scope) and the hooks in ``.claude/settings.json``;
Codex's ``.codex/config.toml``, ``~/.codex/config.toml`` and ``.codex/hooks.json``. For each teamroom
entry: whether its command resolves on PATH, whether it runs ``serve``, and which store it would use.
Reads only: nothing is created, migrated or written.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from teamroom.config import ENV_DB, Settings
from teamroom.console import Out
from teamroom.errors import TeamroomError

ORIGINS = {
    "flag": "--db",
    "env": f"{ENV_DB} in this shell's environment",
    "git": "the git repository here: one store in its common git directory, shared by every worktree",
    "user": "no git repository here: the per-user data directory",
}
STYLE = {"ok": "green", "note": "cyan", "problem": "bold red"}


@dataclass
class Finding:
    level: str  # ok | note | problem
    where: str  # the store, or the config file and entry
    text: str


@dataclass
class Report:
    store: dict[str, Any]
    looked_in: list[str]
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: str, where: str, text: str) -> None:
        self.findings.append(Finding(level, where, text))

    @property
    def ok(self) -> bool:
        return not any(f.level == "problem" for f in self.findings)


def diagnose(
    settings: Settings, project: Path, *, home: Path | None = None, env: Mapping[str, str] | None = None
) -> Report:
    """Every finding about the store of ``settings`` and the client configs of ``project`` (and of ``home``)."""
    env = os.environ if env is None else env
    home = home or Path.home()
    codex_home = Path(env["CODEX_HOME"]) if env.get("CODEX_HOME") else home / ".codex"
    store = settings.db_path
    report = Report(store={"path": str(settings.db_path), "origin": settings.db_origin}, looked_in=[])
    _check_store(report, settings)
    sources: list[tuple[Path, str, Callable[[Report, Path, Any], list[tuple[str, Any]]]]] = [
        (project / ".mcp.json", "json", _mcp_json),
        (home / ".claude.json", "json", lambda r, p, data: _claude_json(r, p, data, project)),
        (project / ".claude" / "settings.json", "json", lambda r, p, data: _hooks(r, p, data, "claude", env)),
        (project / ".claude" / "settings.local.json", "json", lambda r, p, data: _hooks(r, p, data, "claude", env)),
        (project / ".codex" / "config.toml", "toml", _codex_toml),
        (codex_home / "config.toml", "toml", _codex_toml),
        (project / ".codex" / "hooks.json", "json", lambda r, p, data: _hooks(r, p, data, "codex", env)),
    ]
    servers = 0
    for path, kind, read in sources:
        report.looked_in.append(str(path))
        data = _load(report, path, kind)
        if data is None:
            continue
        for where, entry in read(report, path, data):
            servers += 1
            _check_server(report, where, entry, project, store, env)
    if not servers:
        report.add(
            "problem", "clients",
            f"no client config here starts teamroom: run `teamroom init claude` (or codex) in {project}",
        )  # fmt: skip
    found = shutil.which("teamroom", path=env.get("PATH"))
    report.add("ok" if found else "note", "PATH", f"teamroom is {found}" if found else "teamroom is not on PATH")
    return report


# --- the store --------------------------------------------------------------------------------


def _check_store(report: Report, settings: Settings) -> None:
    where = "store"
    report.add("note", where, f"{settings.db_path}, chosen by {ORIGINS.get(settings.db_origin, settings.db_origin)}")
    if not isinstance(settings.db_path, Path):
        report.add("note", where, "not a SQLite file: doctor checks the health of SQLite stores only")
        return
    from teamroom.store.sqlite.store import SQLiteStore

    found = SQLiteStore.inspect(settings.db_path)
    report.store.update(found)
    if not found["exists"]:
        report.add(
            "note", where,
            "no store there yet: the first call of an agent creates it. If your agents have been working, they"
            " use another store: compare the stores the entries below name",
        )  # fmt: skip
        return
    if "error" in found:
        report.add("problem", where, found["error"])
        return
    version, latest = found["schema_version"], found["latest_version"]
    if version > latest:
        report.add("problem", where, f"schema {version} is newer than this teamroom knows ({latest}): upgrade teamroom")
    elif version < latest:
        report.add("note", where, f"schema {version}; this teamroom upgrades it to {latest} when it first opens it")
    else:
        report.add("ok", where, f"schema {version}, {found['journal_mode']}, {found['bytes'] / 1e6:,.1f} MB")
    if found["integrity"] == ["ok"]:
        report.add("ok", where, "integrity_check: ok")
    else:
        problems = "; ".join(found["integrity"][:5])
        report.add("problem", where, f"integrity_check: {problems}. Keep the file, copy it aside, and restore a backup")


# --- the configs --------------------------------------------------------------------------------


def _load(report: Report, path: Path, kind: str) -> Any:
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text) if kind == "toml" else json.loads(text or "{}")
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        report.add("problem", str(path), f"cannot be read ({exc}): the client ignores it or fails; fix it")
        return None


def _entry(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


def _mcp_json(report: Report, path: Path, data: Any) -> list[tuple[str, Any]]:
    entry = _entry(_entry(data, "mcpServers"), "teamroom")
    return [] if entry is None else [(f"{path} mcpServers.teamroom", entry)]


def _claude_json(report: Report, path: Path, data: Any, project: Path) -> list[tuple[str, Any]]:
    found = []
    user = _entry(_entry(data, "mcpServers"), "teamroom")
    if user is not None:
        found.append((f"{path} mcpServers.teamroom (user scope)", user))
    mine = _entry(_entry(data, "projects"), str(project))
    local = _entry(_entry(mine, "mcpServers"), "teamroom")
    if local is not None:
        found.append((f"{path} projects[{project}].mcpServers.teamroom (local scope)", local))
    if "teamroom" in (_entry(mine, "disabledMcpjsonServers") or []):
        report.add(
            "problem", f"{path} projects[{project}]",
            "disabledMcpjsonServers lists teamroom: Claude Code was told not to start the project's server;"
            " enable it with /mcp in Claude Code",
        )  # fmt: skip
    return found


def _codex_toml(report: Report, path: Path, data: Any) -> list[tuple[str, Any]]:
    entry = _entry(_entry(data, "mcp_servers"), "teamroom")
    if entry is None:
        return []
    if isinstance(entry, dict) and entry.get("enabled") is False:
        report.add("problem", f"{path} [mcp_servers.teamroom]", "enabled = false: Codex does not start it")
    return [(f"{path} [mcp_servers.teamroom]", entry)]


def _hooks(report: Report, path: Path, data: Any, client: str, env: Mapping[str, str]) -> list[tuple[str, Any]]:
    """Hooks are not servers: each teamroom hook's command is checked here, and no entry is returned."""
    hooks = _entry(data, "hooks")
    if "teamroom" in (_entry(data, "disabledMcpjsonServers") or []):
        report.add("problem", str(path), "disabledMcpjsonServers lists teamroom: Claude Code will not start it")
    if not isinstance(hooks, dict):
        return []
    commands = sorted(
        {
            h["command"]
            for groups in hooks.values() if isinstance(groups, list)
            for g in groups if isinstance(g, dict)
            for h in g.get("hooks") or [] if isinstance(h, dict) and f"hook {client}" in str(h.get("command", ""))
        }
    )  # fmt: skip
    for command in commands:
        words = _split(command)
        resolved = _resolve(words[0], env) if words else None
        if resolved is None:
            report.add("problem", f"{path} hooks", f"{command!r}: {words[0] if words else 'it'} is not on PATH")
        else:
            report.add("ok", f"{path} hooks", f"{command!r} runs {resolved}")
    return []


def _check_server(report: Report, where: str, entry: Any, project: Path, store: Path, env: Mapping[str, str]) -> None:
    if not isinstance(entry, dict):
        report.add("problem", where, "is not a table/object with a command: the client cannot start it")
        return
    if entry.get("url"):
        report.add("note", where, f"served over HTTP at {entry['url']} (a team server): its store is the server's")
        return
    command = entry.get("command")
    if not isinstance(command, str) or not command:
        report.add("problem", where, "has no command: the client cannot start it")
        return
    args = [str(a) for a in entry["args"]] if isinstance(entry.get("args"), list) else []
    words = [command, *args]
    resolved = _resolve(command, env)
    line = shlex.join(words)
    if resolved is None:
        spaced = " (the command is one program: put its arguments in args)" if " " in command.strip() else ""
        report.add(
            "problem", where,
            f"{line!r}: {command!r} is not on PATH here{spaced}; the client may have another PATH, so put"
            f" teamroom on it or write its absolute path{_suggestion(env)}",
        )  # fmt: skip
        return
    if "serve" not in words[1:]:
        report.add("problem", where, f"{line!r} does not run `serve`: the client starts something that is not a server")
        return
    report.add("ok", where, f"{line!r} runs {resolved}")
    used = _store_of(words, entry, project, env)
    if used is not None and used != store:
        report.add(
            "problem", where,
            f"its agents use the store {used}, not {store}: they do not meet the others (or this shell's)",
        )  # fmt: skip


def _split(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _resolve(command: str, env: Mapping[str, str]) -> str | None:
    """Where ``command`` runs from, with ``${VAR}`` expanded as the clients expand it; None if nowhere."""
    return shutil.which(os.path.expandvars(command), path=env.get("PATH"))


def _suggestion(env: Mapping[str, str]) -> str:
    found = shutil.which("teamroom", path=env.get("PATH"))
    return f" ({found})" if found else ""


def _store_of(words: list[str], entry: dict[str, Any], project: Path, env: Mapping[str, str]) -> Path | None:
    """The store an entry's server would use: its ``--db``, else ``TEAMROOM_DB`` in its env or in the
    environment it inherits, else the one the project's directory leads to (its git repository's)."""
    given = None
    for i, word in enumerate(words):
        if word == "--db" and i + 1 < len(words):
            given = words[i + 1]
        elif word.startswith("--db="):
            given = word.removeprefix("--db=")
    entry_env = {k: str(v) for k, v in entry["env"].items()} if isinstance(entry.get("env"), dict) else {}
    inherited = {**env, **entry_env}
    given = given or inherited.get(ENV_DB)
    if given and "://" in given and not given.startswith("sqlite:"):
        return None  # a database server: doctor does not look there
    try:
        found = Settings.resolve(os.path.expandvars(given) if given else None, cwd=project, environ=inherited)
    except TeamroomError:  # a store the server would refuse: it says so itself when the client starts it
        return None
    return found.db_path if isinstance(found.db_path, Path) else None


# --- output -------------------------------------------------------------------------------------


def show(report: Report, out: Out) -> int:
    if out.json:
        out.data({"ok": report.ok, "store": report.store, "looked_in": report.looked_in,
                  "findings": [asdict(f) for f in report.findings]})  # fmt: skip
        return 0 if report.ok else 1
    for f in report.findings:
        line = Text()
        line.append(f"{f.level:<8}", style=STYLE[f.level])
        line.append(f"{f.where}: ", style="bold")
        line.append(f.text)
        out.print(line)
    out.print(Text(f"looked in: {', '.join(report.looked_in)}", style="dim"))
    return 0 if report.ok else 1

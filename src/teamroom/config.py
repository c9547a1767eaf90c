"""Settings from flags and TEAMROOM_* variables, resolved in one place.

Store location, in order: ``--db PATH``, ``TEAMROOM_DB``, one store per git repository (shared by
every worktree of it, found with ``git rev-parse --git-common-dir``), else a per-user data directory.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Literal, NamedTuple

from teamroom.errors import Invalid

Durability = Literal["normal", "full"]

AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # used with fullmatch: "$" would let "lead\n" in
STORE_FILE = "teamroom.db"

ENV_DB = "TEAMROOM_DB"
ENV_AGENT = "TEAMROOM_AGENT"
ENV_DURABILITY = "TEAMROOM_DURABILITY"
ENV_RETENTION_DAYS = "TEAMROOM_RETENTION_DAYS"  # finished messages and old events go after this many days
ENV_GC_MINUTES = "TEAMROOM_GC_MINUTES"  # how often a server runs gc by itself; 0: never
# Set by `teamroom worker` for the command it runs: the message that command is handling.
ENV_MESSAGE_ID = "TEAMROOM_MESSAGE_ID"
# Claude Code gives each stdio server its session id; a hook gets the same id on stdin.
ENV_CLAUDE_SESSION = "CLAUDE_CODE_SESSION_ID"


class Settings(NamedTuple):
    """Everything a teamroom process needs to know about where and how to run.

    Immutable; a NamedTuple rather than a dataclass so that the hooks, which run on every prompt,
    do not import dataclasses (and inspect and ast behind it).
    """

    db_path: Path | str  # a SQLite file, or (str) a PostgreSQL URL, kept as given
    durability: Durability = "normal"
    default_agent: str | None = None
    db_origin: str = "flag"  # which rule chose db_path: flag, env, git, user
    session_id: str | None = None  # the client session this process serves, when the client says
    retention_days: float = 14.0
    gc_minutes: float = 60.0

    @classmethod
    def resolve(
        cls,
        db: str | os.PathLike[str] | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        environ: dict[str, str] | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        path, origin = _store_path(db, Path(cwd or os.getcwd()), env)
        durability = env.get(ENV_DURABILITY, "normal").strip().lower() or "normal"
        if durability not in ("normal", "full"):
            raise Invalid(f"{ENV_DURABILITY} must be 'normal' or 'full', got {durability!r}")
        agent = env.get(ENV_AGENT) or None
        if agent is not None and not AGENT_NAME.fullmatch(agent):
            raise Invalid(
                f"{ENV_AGENT}={agent!r} is not a valid agent name (letters, digits, '.', '_', '-'; at most 64)"
            )
        session = env.get(ENV_CLAUDE_SESSION, "").strip()[:128] or None
        return cls(
            db_path=path, durability=durability, default_agent=agent, db_origin=origin, session_id=session,  # type: ignore[arg-type]
            retention_days=_number(env, ENV_RETENTION_DAYS, 14.0, zero=False),
            gc_minutes=_number(env, ENV_GC_MINUTES, 60.0, zero=True),
        )  # fmt: skip


def _number(env: os.Mapping[str, str], name: str, default: float, *, zero: bool) -> float:
    """A positive number from ``env[name]`` (or 0 when ``zero`` allows it), else ``default``."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 or (zero and value == 0)) or value == float("inf"):
        raise Invalid(f"{name} must be a number greater than 0{' (or 0)' if zero else ''}, got {text!r}")
    return value


def _store_path(
    db: str | os.PathLike[str] | None, cwd: Path, env: os.Mapping[str, str]
) -> tuple[Path | str, str]:
    """Where the store is and which rule chose it: a Path to a SQLite file, or a PostgreSQL URL as given."""
    from teamroom.store import parse_target  # stdlib only, as the hooks need

    for given, origin in ((db, "flag"), (env.get(ENV_DB), "env")):
        if given:
            backend, where = parse_target(given)
            if backend == "postgresql":
                return where, origin
            return (cwd / Path(where).expanduser()).resolve(), origin
    common = git_common_dir(cwd)
    if common is not None:
        return common / STORE_FILE, "git"
    return user_data_dir(env) / STORE_FILE, "user"


def git_common_dir(cwd: Path) -> Path | None:
    """The .git directory shared by every worktree of the repository around ``cwd``, if any."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--git-common-dir"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return (cwd / out.stdout.strip()).resolve()


def user_data_dir(env: os.Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "teamroom"

"""A real PostgreSQL for the tests: a private cluster in a temp dir on a loopback port.

Debian's ``postgresql`` package provides the server binaries (``/usr/lib/postgresql/N/bin``);
`Cluster.start` runs ``initdb`` and ``pg_ctl`` there, as the ``postgres`` user when the tests run as
root (PostgreSQL refuses to run as root), with durability off (a test cluster is thrown away) and a
default collation that is not byte order (ICU en-US), so a column that forgets ``COLLATE "C"`` shows. A
developer with a server of their own may point ``TEAMROOM_TEST_PG_URL`` at it instead (a role that
may create schemas), or turn them off with ``TEAMROOM_TEST_PG=off``. `unavailable` says why there
is no PostgreSQL: the tests skip with that reason, or fail under CI (``CI`` set), which must never
skip them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

ENV_URL = "TEAMROOM_TEST_PG_URL"
ENV_OFF = "TEAMROOM_TEST_PG"  # =off: skip the PostgreSQL tests (a developer in a hurry; never under CI)
SERVER_USER = "postgres"  # who runs the server when the tests run as root
START_TIMEOUT_S = 60


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's server binaries (initdb, pg_ctl), if any."""
    found = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def unavailable() -> str | None:
    """Why no PostgreSQL can be had for the tests, or None when one can."""
    if os.environ.get(ENV_OFF, "").strip().lower() in ("0", "off", "no", "skip"):
        return f"{ENV_OFF}={os.environ[ENV_OFF]}: the PostgreSQL tests are turned off"
    if os.environ.get(ENV_URL):
        return None
    if bin_dir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql, or set TEAMROOM_TEST_PG_URL)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One PostgreSQL server for a test session; `url` names its database ``postgres``."""

    def __init__(self, url: str, data: Path | None = None, root: Path | None = None, options: str = "") -> None:
        self.url = url
        self._data, self._root, self._options = data, root, options

    @property
    def private(self) -> bool:
        """Whether this is our own cluster (one the tests may stop and start), not TEAMROOM_TEST_PG_URL's."""
        return self._data is not None

    @classmethod
    def start(cls) -> Cluster:
        """The server ``TEAMROOM_TEST_PG_URL`` names, else a private cluster started now."""
        if os.environ.get(ENV_URL):
            return cls(os.environ[ENV_URL])
        binaries = bin_dir()
        assert binaries is not None, unavailable()
        root = Path(tempfile.mkdtemp(prefix="teamroom-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(root, SERVER_USER)
            as_user = ["runuser", "-u", SERVER_USER, "--"]
        data = root / "data"
        try:
            _quiet([*as_user, str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US",
                    "--no-sync", "--no-instructions"])  # fmt: skip
            for _ in range(3):  # another process may take the free port before the server does
                port = _free_port()
                options = (
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
                    " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                )
                started = subprocess.run(
                    [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                     "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start"],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if started.returncode == 0:
                    return cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", data, root, options)
            log = (root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr.strip()}\n{log}")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def stop(self) -> None:
        if self._data is None or self._root is None:
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self._root, ignore_errors=True)

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on the private cluster (``"-m", "fast", "stop"``; ``"start"`` starts it as before)."""
        assert self._data is not None and self._root is not None, "not a private cluster"
        as_user = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
        binaries = bin_dir()
        assert binaries is not None
        extra = ["-o", self._options, "-l", str(self._root / "server.log"), "-w"] if "start" in args else ["-w"]
        _quiet([*as_user, str(binaries / "pg_ctl"), "-D", str(self._data), *extra, *args])


def admin(cluster: Cluster):
    """A connection to ``cluster`` for setting tests up (autocommit), closed after the ``with``."""
    import psycopg

    return psycopg.connect(cluster.url, autocommit=True)


def with_schema(url: str, schema: str) -> str:
    """``url`` with its search_path set to ``schema``: a store there is a store of its own."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def _quiet(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)

"""The audit log's archive: JSON lines in one file per month, synced to disk before events are deleted.

Copy, then delete: gc deletes events only after `Writer.sync` returned for the lines that hold them.
A crash in between leaves the events in the store, so the next run copies them again: a line may
appear twice (same ``id``), never not at all. A line cut short by a crash is left on a line of its
own, so the next append starts cleanly after it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: two gc runs at once may copy a page twice, which the format allows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class Writer:
    """Appends lines to the month files of one archive directory; `sync` makes what was written durable.

    Files stay open between writes, so gc syncs once for several pages rather than once a page.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, int] = {}
        self._created = False

    def __enter__(self) -> Writer:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()

    def write(self, lines: dict[str, list[str]]) -> None:
        """Append ``lines`` (``{file name: [line, ...]}``, each line without its newline)."""
        for name, chunk in lines.items():
            fd, torn = self._open(name)
            data = ("\n" if torn else "").encode() + "".join(f"{line}\n" for line in chunk).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

    def sync(self) -> None:
        """Everything written so far is on disk once this returns."""
        for fd in self._files.values():
            os.fsync(fd)
        if self._created and hasattr(os, "O_DIRECTORY"):  # a new file's name is durable once its directory is
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._created = False

    def _open(self, name: str) -> tuple[int, bool]:
        """The file's descriptor, and (on first opening) whether its last line was cut short."""
        if name in self._files:
            return self._files[name], False
        path = self.directory / name
        self._created = self._created or not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._files[name] = fd
        size = os.fstat(fd).st_size
        return fd, size > 0 and os.pread(fd, 1, size - 1) != b"\n"  # pread ignores O_APPEND


def append(directory: Path, lines: dict[str, list[str]]) -> None:
    """Append ``lines`` to the archive in ``directory`` and sync them to disk."""
    with Writer(directory) as writer:
        writer.write(lines)
        writer.sync()


@contextlib.contextmanager
def exclusive(directory: Path) -> Iterator[bool]:
    """Hold the archive for one gc run at a time across processes; yields False when another holds it."""
    if fcntl is None:
        yield True
        return
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            got = True
        except BlockingIOError:
            got = False
        yield got
    finally:
        os.close(fd)  # closing releases the lock


def size(directory: Path) -> int:
    """Bytes in the archive's files (0 when there is none yet)."""
    if not directory.is_dir():
        return 0
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file() and p.name != LOCK_FILE)

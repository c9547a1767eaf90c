"""The audit log's archive: JSON lines in one file per month, appended and fsynced before events are deleted.

Copy, then delete: `append` returns only once the lines are on disk, and the events are deleted in a
transaction after that. A crash in between leaves the events in the store, so the next run copies
them again: a line may appear twice (same ``id``), never not at all. A line cut short by a crash is
left on a line of its own, so the next append starts cleanly after it.
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


def append(directory: Path, lines: dict[str, list[str]]) -> None:
    """Append ``lines`` (``{file name: [line, ...]}``, each line without its newline) durably."""
    directory.mkdir(parents=True, exist_ok=True)
    created = False
    for name, chunk in lines.items():
        path = directory / name
        created = created or not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"  # pread ignores O_APPEND
            data = ("\n" if torn else "").encode() + "".join(f"{line}\n" for line in chunk).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    if created and hasattr(os, "O_DIRECTORY"):  # a new file's name is durable once its directory is synced
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


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

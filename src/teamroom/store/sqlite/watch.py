"""Waiting for another process's commit: one watcher per store wakes every waiter of the process.

A commit in WAL mode writes the store's ``-wal`` file, so on Linux the watcher sleeps on an inotify
descriptor for the store's directory and looks at ``PRAGMA data_version`` only when one of the
store's files was written, and once a second in case a notification was lost (the database stays
the source of truth: a lost notification only delays). Where inotify is missing (macOS, no
instances left, a forced fallback) it polls ``data_version`` instead, every 5 ms after a change,
slowing to every 250 ms while nothing changes.

There is no background task, so no task group the store would have to own: the first waiter takes
the watch while it waits, and the others wait on one shared event. A look that sees a change sets
the event; every waiter then rechecks its own condition, and one of those still waiting takes the
watch. A watcher that leaves before a change (its own timeout, a cancellation) sets the event too,
so the watch is handed over.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import anyio

log = logging.getLogger(__name__)

RECHECK_S = 1.0  # with inotify: look this often anyway, in case a notification was lost
SETTLE_S = (0.001, 0.064)  # a write the store does not show yet: look again after 1, 2, 4 ... 64 ms
POLL_S = (0.005, 0.250)  # without inotify: the interval right after a change, and while idle

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100
IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
WATCHED = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name


class Inotify:
    """An inotify descriptor on one directory, telling whether some of its files were written."""

    def __init__(self, directory: Path, names: set[str]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch  # AttributeError where there is none
        add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise _errno_error("inotify_init1")
        if add(fd, os.fsencode(directory), WATCHED) < 0:
            error = _errno_error(f"inotify_add_watch {directory}")
            os.close(fd)
            raise error
        self.fd = fd
        self.lost = False  # the directory went away: nothing more will come
        self._names = {os.fsencode(name) for name in names}

    def drain(self) -> bool:
        """Read every queued event; whether one was a write to a watched file (or events were lost)."""
        written = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return written
            at = 0
            while at < len(data):
                _, mask, _, size = EVENT.unpack_from(data, at)
                name = data[at + EVENT.size : at + EVENT.size + size].rstrip(b"\0")
                at += EVENT.size + size
                if mask & IN_IGNORED:
                    self.lost = True
                written = written or bool(mask & IN_Q_OVERFLOW) or name in self._names

    def close(self) -> None:
        os.close(self.fd)


def _open_inotify(directory: Path, names: set[str]) -> Inotify | None:
    """A watch on ``directory`` for writes to ``names``, or None where inotify is missing (then waits poll)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return Inotify(directory, names)
    except (AttributeError, OSError) as exc:  # no such function in this libc; no instances or watches left
        log.warning("store %s: no inotify (%s); waits poll the store, waking up to 250 ms late", directory, exc)
        return None


def _errno_error(what: str) -> OSError:
    number = ctypes.get_errno()
    return OSError(number, f"{what}: {os.strerror(number)}")


class Watcher:
    """Wakes the waiters of one store when ``version()`` (``PRAGMA data_version``) may have changed.

    ``inotify=False`` forces the polling fallback. ``checks`` counts the looks at the store.
    Everything here runs on the event loop's thread, `wake` included.
    """

    def __init__(self, path: Path, version: Callable[[], int], *, inotify: bool = True) -> None:
        real = Path(os.path.realpath(path))  # SQLite puts the -wal file next to a symlink's target
        self._directory, self._names = real.parent, {real.name, f"{real.name}-wal", f"{real.name}-journal"}
        self._version = version
        self._recheck_s = RECHECK_S
        self._inotify: Inotify | None = None
        self._use_inotify = inotify
        self._event = anyio.Event()
        self._watching = False
        self._scope: anyio.CancelScope | None = None  # the watcher's current sleep, cut short by `wake`
        self._last: int | None = None  # the version the last look saw
        self._due = 0.0  # when the watcher looks next without a notification (anyio.current_time)
        self._settle: float | None = None
        self._poll = POLL_S[0]
        self._closed = False
        self.checks = 0

    @property
    def mode(self) -> str:
        """``inotify`` once a watch is in place, else ``poll`` (before the first wait, too)."""
        return "inotify" if self._inotify is not None else "poll"

    def wake(self) -> None:
        """Wake every waiter now (this process committed, or the watch changes hands)."""
        self._event.set()
        self._event = anyio.Event()
        if self._scope is not None:
            self._scope.cancel()

    async def wait(self, changed: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``changed()`` or ``timeout`` seconds pass; True if it changed (or the store closed)."""
        if self._last is None:  # before any waiter's first check, so that no change falls in between
            self._last = self._version()
        with anyio.move_on_after(max(timeout, 0)):
            while not self._closed:
                event = self._event
                if changed():
                    return True
                if self._watching:
                    await event.wait()
                else:
                    await self._watch(event)
        return self._closed or changed()

    def close(self) -> None:
        """Stop watching: every waiter returns (the caller then finds the store closed)."""
        self._closed = True
        if self._inotify is not None:
            anyio.notify_closing(self._inotify.fd)
            self._inotify.close()
            self._inotify = None
        self.wake()

    # --- the watch -------------------------------------------------------------------------------

    async def _watch(self, event: anyio.Event) -> None:
        """Watch the store for every waiter until ``event`` is set; hand the watch over if cut short."""
        self._watching = True
        try:
            self._start()
            while not event.is_set() and not self._closed:
                await self._sleep(event)
        finally:
            self._watching = False
            if not event.is_set():
                self.wake()  # this waiter leaves early: the others wake, recheck, and one takes the watch

    def _start(self) -> None:
        now = anyio.current_time()
        if self._use_inotify and self._inotify is None:
            self._use_inotify = False  # one try per store
            self._inotify = _open_inotify(self._directory, self._names)
            if self._inotify is not None:
                self._due = now  # look once at once: a commit before the watch was in place sent nothing
        if self._due < now:
            self._due = now + self._interval()

    def _interval(self) -> float:
        if self._inotify is None:
            return self._poll
        return self._recheck_s if self._settle is None else self._settle

    async def _sleep(self, event: anyio.Event) -> None:
        """Sleep until the store may have changed or `wake` is called; then look, if it is time."""
        written = False
        with anyio.CancelScope(deadline=self._due) as self._scope:
            try:
                if self._inotify is None:
                    await anyio.sleep_forever()
                else:
                    await anyio.wait_readable(self._inotify.fd)
                    written = self._inotify.drain()
            except anyio.ClosedResourceError:
                return  # `close` is under way
            finally:
                self._scope = None
        if event.is_set() or (not written and anyio.current_time() < self._due):
            return  # woken by `wake`, or a file the store does not care about changed
        self._look(written)

    def _look(self, written: bool) -> None:
        """Look at the store once; wake every waiter if it changed, and decide when to look next."""
        self.checks += 1
        version = self._version()
        if version != self._last:
            self._last, self._settle, self._poll = version, None, POLL_S[0]
            self.wake()
        elif self._inotify is None:
            self._poll = min(self._poll * 2, POLL_S[1])
        elif written:
            # A commit writes the -wal file first and the WAL index (what data_version reads) just
            # after, so a look right after the notification may come too early: look again soon.
            self._settle = SETTLE_S[0]
        elif self._settle is not None:
            self._settle = self._settle * 2 if self._settle < SETTLE_S[1] else None
        if self._inotify is not None and self._inotify.lost:
            log.warning("store %s: its directory is no longer watched; waits poll the store", self._directory)
            self._inotify.close()
            self._inotify = None
        self._due = anyio.current_time() + self._interval()

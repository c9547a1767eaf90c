"""Is the event loop free while a large read runs? A second call on the same connection.

    python bench/bench_loop.py [--rounds 30] [--entries 500] [--kib 60]

One server, one connection, a board of ``--entries`` entries of ``--kib`` KiB each. Each round times
a call twice: once idle, and once issued the moment the store begins the transaction of a
``read_board(limit=500)`` of the whole board (a ~30 MB answer), timed from that moment: a loop the
transaction blocks delays the call by as long. Idle and busy alternate, so a busy machine slows
both alike. Target (issue 10): the busy call within 2x of the idle one.

The calls: ``prompts/list``, which the server's loop answers alone (this SDK's server does not
answer ``ping``), and ``heartbeat``, a store write, which also waits for the store's one
connection to finish the read. After the transaction the SDK serialises the answer on the loop;
that part is the SDK's and is not what this measures.

What remains of the busy figure is the GIL: while the store's thread turns 30 MB of rows into
Python objects it holds the GIL most of the time, and the loop, once it has let go of it (in its
``epoll`` wait), waits to get it back. ``--switch-interval`` sets ``sys.setswitchinterval`` to study
that share; on this machine the results were too noisy to prefer any value over the default.

The server is the real one (`build_server`) spoken to in-process by the SDK's client, on the
server's event loop, with a store that notes when the read's transaction starts. Over stdio the
SDK's transport alone takes seconds for one 30 MB line (3 MB in 0.3 s, 6 MB in 1.6 s here), which
would measure the transport, not the loop.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Report, summary  # noqa: E402
from teamroom.config import Settings  # noqa: E402
from teamroom.server import build_server  # noqa: E402
from teamroom.store import SQLiteStore, open_store  # noqa: E402
from teamroom.store.rules import board  # noqa: E402


class MarkedStore(SQLiteStore):
    """The SQLite store, noting when a board read's transaction is handed to `_run`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading = anyio.Event()
        self.reading_at = 0.0

    async def _run(self, write: bool, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if fn is board.read:
            self.reading_at = time.perf_counter()
            self.reading.set()
        return await super()._run(write, fn, args)


async def fill(db: Path, entries: int, kib: int) -> None:
    body = ("0123456789abcdef" * 64 * kib)[: kib * 1024 - 64]
    async with open_store(db) as store:
        for i in range(entries):
            await store.post_finding(
                "filler", f"{i} {body}", title=None, scope="big", kind=None, tags=[], refs=[], supersedes=None
            )


async def main(rounds: int, entries: int, kib: int) -> None:
    report = Report("loop")
    print(f"switch interval {sys.getswitchinterval() * 1000:g} ms")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        await fill(db, entries, kib)
        store = MarkedStore(db)
        async with Client(build_server(Settings(db_path=db, default_agent="bench"), store=store)) as c:

            async def call(tool: str, **arguments: object) -> dict:
                result = await c.call_tool(tool, arguments)
                if result.is_error:
                    raise RuntimeError(f"{tool}: {result.content[0].text}")
                return result.structured_content or {}

            async def prompts() -> None:
                await c.list_prompts(cache_mode="refresh")  # past the client's cache, to the server

            async def heartbeat() -> None:
                await call("heartbeat")

            async def read() -> None:
                got = await call("read_board", scope="big", since=0, limit=500)
                assert len(got["entries"]) == entries, len(got["entries"])

            async def idle(fn: Callable[[], Awaitable[None]]) -> float:
                t0 = time.perf_counter()
                await fn()
                return (time.perf_counter() - t0) * 1000

            async def beside_read(fn: Callable[[], Awaitable[None]]) -> tuple[float, float]:
                store.reading = anyio.Event()
                async with anyio.create_task_group() as tg:
                    t0 = time.perf_counter()
                    tg.start_soon(read)
                    await store.reading.wait()
                    await fn()
                    second = (time.perf_counter() - store.reading_at) * 1000
                return second, (time.perf_counter() - t0) * 1000

            for fn in (prompts, heartbeat, read):  # warm-up
                await fn()
            samples: dict[str, list[float]] = {k: [] for k in ("prompts", "prompts busy", "hb", "hb busy", "read")}
            for _ in range(rounds):
                samples["prompts"].append(await idle(prompts))
                busy, took = await beside_read(prompts)
                samples["prompts busy"].append(busy)
                samples["read"].append(took)
                samples["hb"].append(await idle(heartbeat))
                busy, took = await beside_read(heartbeat)
                samples["hb busy"].append(busy)
                samples["read"].append(took)
    s = {k: summary(v) for k, v in samples.items()}
    report.header(f"{rounds} rounds, a board of {entries} x {kib} KiB, p50 (ms); ratio busy / idle")
    report.add("read_board(limit=500), whole call p50", s["read"]["p50"], "ms")
    report.add("prompts/list idle p50", s["prompts"]["p50"], "ms", s["prompts"]["p50"])
    report.add("prompts/list during the read p50 (target <= 2x)", s["prompts busy"]["p50"], "ms", s["prompts"]["p50"])
    report.add("prompts/list during the read p95", s["prompts busy"]["p95"], "ms", s["prompts"]["p95"])
    report.add("heartbeat idle p50", s["hb"]["p50"], "ms", s["hb"]["p50"])
    report.add("heartbeat during the read p50 (queued behind it)", s["hb busy"]["p50"], "ms", s["hb"]["p50"])
    print(f"\nwritten: {report.save()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--entries", type=int, default=500)
    parser.add_argument("--kib", type=int, default=60)
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval, in seconds")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    anyio.run(main, args.rounds, args.entries, args.kib)

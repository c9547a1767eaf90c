"""Is the event loop free while a large read runs? A second call on the same connection.

    python bench/bench_loop.py [--rounds 30] [--entries 500] [--kib 60]

One server, one connection, a board of ``--entries`` entries of ``--kib`` KiB each. Each round times
the same call twice: once idle, once sent just after a ``read_board(limit=500)`` of the whole board
(a ~30 MB answer) started. Idle and busy alternate, so a busy machine slows both alike.

The server is the real one (`build_server`) spoken to in-process by the SDK's client, which shares
the server's event loop: a loop the store blocks stalls the second call too. Over stdio the SDK's
transport alone takes seconds for one 30 MB line (its time grows with the square of the size
here: 3 MB in 0.3 s, 6 MB in 1.6 s), which would measure the transport, not the loop. The calls:
``prompts/list`` (answered by the server's loop alone, touching no store; this SDK's server does
not answer ``ping``) and ``heartbeat`` (a store write, which
also waits for the store's one connection). Target (issue 10): the busy call within 2x of the idle
one, because the loop is free while the read runs on the store's thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mcp import Client  # noqa: E402

from bench.common import Report, summary  # noqa: E402
from teamroom.config import Settings  # noqa: E402
from teamroom.server import build_server  # noqa: E402
from teamroom.store import open_store  # noqa: E402

HEAD_START_S = 0.005  # the read_board request goes out first; the second call follows while it runs


async def fill(db: Path, entries: int, kib: int) -> None:
    body = ("0123456789abcdef" * 64 * kib)[: kib * 1024 - 64]
    async with open_store(db) as store:
        for i in range(entries):
            await store.post_finding(
                "filler", f"{i} {body}", title=None, scope="big", kind=None, tags=[], refs=[], supersedes=None
            )


async def main(rounds: int, entries: int, kib: int) -> None:
    report = Report("loop")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        await fill(db, entries, kib)
        async with Client(build_server(Settings(db_path=db, default_agent="bench"))) as c:

            async def call(tool: str, **arguments: object) -> dict:
                result = await c.call_tool(tool, arguments)
                if result.is_error:
                    raise RuntimeError(f"{tool}: {result.content[0].text}")
                return result.structured_content or {}

            async def ping() -> None:
                await c.list_prompts(cache_mode="refresh")  # past the client's cache, to the server

            async def heartbeat() -> None:
                await call("heartbeat")

            async def read() -> None:
                got = await call("read_board", scope="big", since=0, limit=500)
                assert len(got["entries"]) == entries, len(got["entries"])

            async def timed(fn) -> float:
                t0 = time.perf_counter()
                await fn()
                return (time.perf_counter() - t0) * 1000

            async def beside_read(fn) -> tuple[float, float]:
                out: dict[str, float] = {}

                async def reader() -> None:
                    out["read"] = await timed(read)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(reader)
                    # Timed from when the call was meant to go: a loop blocked during the head start counts.
                    meant = time.perf_counter() + HEAD_START_S
                    await anyio.sleep(HEAD_START_S)
                    await fn()
                    second = (time.perf_counter() - meant) * 1000
                return second, out["read"]

            for fn in (ping, heartbeat, read):  # warm-up
                await fn()
            samples: dict[str, list[float]] = {k: [] for k in ("ping", "ping busy", "hb", "hb busy", "read")}
            for _ in range(rounds):
                samples["ping"].append(await timed(ping))
                busy, took = await beside_read(ping)
                samples["ping busy"].append(busy)
                samples["read"].append(took)
                samples["hb"].append(await timed(heartbeat))
                busy, took = await beside_read(heartbeat)
                samples["hb busy"].append(busy)
                samples["read"].append(took)
    s = {k: summary(v) for k, v in samples.items()}
    report.header(f"{rounds} rounds, a board of {entries} x {kib} KiB, p50 (ms); ratio busy / idle")
    report.add("read_board(limit=500) alone-ish p50", s["read"]["p50"], "ms")
    report.add("prompts/list idle p50", s["ping"]["p50"], "ms", s["ping"]["p50"])
    report.add("prompts/list during read_board p50 (target <= 2x)", s["ping busy"]["p50"], "ms", s["ping"]["p50"])
    report.add("heartbeat idle p50", s["hb"]["p50"], "ms", s["hb"]["p50"])
    report.add("heartbeat during read_board p50", s["hb busy"]["p50"], "ms", s["hb"]["p50"])
    print(f"\nwritten: {report.save()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--entries", type=int, default=500)
    parser.add_argument("--kib", type=int, default=60)
    args = parser.parse_args()
    anyio.run(main, args.rounds, args.entries, args.kib)

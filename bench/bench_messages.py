"""Stdio latency of teamroom's messaging tools next to a no-op tool on the same SDK, in the same run.

    python bench/bench_messages.py [--n 300]

Prints medians (p50) and p95 in ms, and the ratio of each p50 to the no-op floor's p50.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Report, client, noop_params, summary, teamroom_params, timed  # noqa: E402


async def main(n: int) -> None:
    report = Report("messages")
    report.header(f"stdio latency, {n} sequential calls each (ms)")
    async with client(noop_params()) as noop:
        floor = summary(await timed(n, lambda: noop("noop", agent="a")))
    report.add("no-op tool (floor) p50", floor["p50"], "ms", floor["p50"])
    report.add("no-op tool (floor) p95", floor["p95"], "ms")
    with tempfile.TemporaryDirectory() as tmp:
        async with client(teamroom_params(Path(tmp) / "bench.db", "bench")) as call:
            await call("register")
            send = summary(await timed(n, lambda: call("send", to="bench", body="x" * 200)))

            async def cycle() -> None:
                await call("send", to="bench", body="x" * 200)
                got = (await call("poll", limit=1))["messages"]
                await call("ack", receipts=[got[0]["receipt"]])

            # drain what the send benchmark queued, so the cycle starts from an empty queue
            while batch := (await call("poll", limit=100))["messages"]:
                await call("ack", receipts=[m["receipt"] for m in batch])
            cyc = summary(await timed(n, cycle))
            hb = summary(await timed(n, lambda: call("heartbeat")))
    report.add("send p50", send["p50"], "ms", floor["p50"])
    report.add("send p95", send["p95"], "ms", floor["p95"])
    report.add("send+poll+ack cycle p50", cyc["p50"], "ms", floor["p50"])
    report.add("send+poll+ack cycle p95", cyc["p95"], "ms", floor["p95"])
    report.add("heartbeat p50", hb["p50"], "ms", floor["p50"])
    print(f"\nwritten: {report.save()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300)
    anyio.run(main, parser.parse_args().n)

"""Stdio latency of teamroom's messaging tools next to a no-op tool on the same SDK, in the same run.

    python bench/bench_messages.py [--n 300] [--round 10]

Both servers run at once and the measurements alternate in rounds of ``--round`` calls (no-op,
send, cycle, heartbeat, no-op, ...), so a busy machine slows the floor and the tools alike.
Prints medians (p50) and p95 in ms, and the ratio of each to the no-op floor's.
Targets (issue 10): send <= 1.3x, send+poll+ack <= 3.8x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Report, client, noop_params, summary, teamroom_params, timed  # noqa: E402


async def main(n: int, per_round: int) -> None:
    report = Report("messages")
    report.header(f"stdio latency, {n} calls each in alternating rounds of {per_round} (ms)")
    with tempfile.TemporaryDirectory() as tmp:
        async with client(noop_params()) as noop, client(teamroom_params(Path(tmp) / "bench.db", "bench")) as call:
            await call("register")
            await call("register", agent="sink")  # sends go to an inbox nobody drains, so the cycle's stays empty

            async def cycle() -> None:
                await call("send", to="bench", body="x" * 200)
                got = (await call("poll", limit=1))["messages"]
                await call("ack", receipts=[got[0]["receipt"]])

            measured = {
                "floor": lambda: noop("noop", agent="a"),
                "send": lambda: call("send", to="sink", body="x" * 200),
                "cycle": cycle,
                "heartbeat": lambda: call("heartbeat"),
            }
            samples: dict[str, list[float]] = {name: [] for name in measured}
            for fn in measured.values():
                await timed(0, fn)  # warm-up
            for _ in range(max(1, n // per_round)):
                for name, fn in measured.items():
                    samples[name] += await timed(per_round, fn, warmup=0)
    floor, send, cyc, hb = (summary(samples[name]) for name in measured)
    report.add("no-op tool (floor) p50", floor["p50"], "ms", floor["p50"])
    report.add("no-op tool (floor) p95", floor["p95"], "ms")
    report.add("send p50 (target <= 1.3x)", send["p50"], "ms", floor["p50"])
    report.add("send p95", send["p95"], "ms", floor["p95"])
    report.add("send+poll+ack cycle p50 (target <= 3.8x)", cyc["p50"], "ms", floor["p50"])
    report.add("send+poll+ack cycle p95", cyc["p95"], "ms", floor["p95"])
    report.add("heartbeat p50", hb["p50"], "ms", floor["p50"])
    print(f"\nwritten: {report.save()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="calls of each kind")
    parser.add_argument("--round", type=int, default=10, help="calls of one kind before switching to the next")
    args = parser.parse_args()
    anyio.run(main, args.n, args.round)

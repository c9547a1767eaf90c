"""teamroom's benchmark suite: every figure next to a floor measured in the same run.

    python bench/run.py                # everything (a few minutes)
    python bench/run.py --quick        # fewer repetitions, smaller stores
    python bench/run.py --only latency,wake

Sections: tools (tools/list size), start, latency (every tool vs a no-op tool), cycles (1/4/8 agents
in separate processes vs the no-op floor), store (store-level cycles/s vs raw sqlite3), wake
(cross-process wake-up of poll and claim_lock), locks (claim latency at 10/1k/10k live locks), big
(poll latency with 1k/100k/1M stored messages, store size), durability (normal vs full).
Medians over repeated runs; spread is p95 or the min-max of the repeats. Writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import sections  # noqa: E402
from bench.common import Report  # noqa: E402

ALL = ["tools", "start", "latency", "cycles", "store", "wake", "locks", "big", "durability"]


async def main(args: argparse.Namespace) -> None:
    only = ALL if not args.only else [s.strip() for s in args.only.split(",")]
    report = Report("suite")
    print(f"teamroom bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores,"
          f" sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="teamroom-bench-") as tmp:
        for name in only:
            await getattr(sections, name)(report, Path(tmp), args.quick)
    print(f"\nwritten: {report.save()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller stores")
    parser.add_argument("--only", help=f"comma-separated sections of: {', '.join(ALL)}")
    anyio.run(main, parser.parse_args())

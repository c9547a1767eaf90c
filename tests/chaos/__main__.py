"""The long chaos run: ``python -m tests.chaos --seconds 300 [--servers 4] [--seed 7]``.

Prints the counts (ops, kills, redeliveries, lost, duplicated...) and every violation found;
exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio

from . import ChaosConfig, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300, help="how long the chaos lasts (default 300)")
    parser.add_argument("--servers", type=int, default=4, help="server processes at a time (default 4)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000, help="random seed (default: the clock)")
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="where the store and the server logs go (default: a temp dir)")
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="teamroom-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = ChaosConfig(
        seconds=args.seconds,
        servers=args.servers,
        seed=args.seed,
        senders=args.senders,
        consumers={"q1": 4, "q2": 3},
    )
    print(
        f"chaos: {args.servers} servers, {args.seconds:g} s, seed {args.seed}, store {workdir}/teamroom.db", flush=True
    )
    started = time.monotonic()
    report = anyio.run(run_chaos, config, workdir)
    print(f"{'wall seconds':>24}: {time.monotonic() - started:.0f}")
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

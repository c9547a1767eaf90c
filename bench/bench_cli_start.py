"""How long a human command takes to start: each run a new process, median of 15 (issue 12).

    python bench/bench_cli_start.py [path/to/teamroom]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = [["--version"], ["--help"], ["status", "--help"], ["inbox", "nobody", "--db", "/nonexistent/x.db"]]


def main() -> None:
    exe = sys.argv[1] if len(sys.argv) > 1 else str(Path(sys.executable).with_name("teamroom"))
    for command in COMMANDS:
        times = []
        for _ in range(15):
            started = time.perf_counter()
            subprocess.run([exe, *command], capture_output=True, check=False)
            times.append(time.perf_counter() - started)
        label = " ".join(command)
        print(f"{label:<40} median {statistics.median(times) * 1000:6.0f} ms  min {min(times) * 1000:5.0f} ms")


if __name__ == "__main__":
    main()

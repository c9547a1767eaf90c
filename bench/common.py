"""Shared pieces of the benchmarks: spawning servers, timing, and printing figures with their floors."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def teamroom_params(db: Path, agent: str, durability: str = "normal") -> StdioServerParameters:
    script = Path(sys.executable).with_name("teamroom")
    command, args = (str(script), ["serve"]) if script.exists() else (sys.executable, ["-m", "teamroom", "serve"])
    env = {"TEAMROOM_AGENT": agent, "TEAMROOM_DURABILITY": durability}
    return StdioServerParameters(command=command, args=[*args, "--db", str(db)], env=env)


def noop_params() -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=[str(HERE / "noop_server.py")])


@asynccontextmanager
async def client(params: StdioServerParameters) -> AsyncIterator[Callable[..., Awaitable[dict[str, Any]]]]:
    async with Client(params) as c:

        async def call(tool: str, **arguments: Any) -> dict[str, Any]:
            result = await c.call_tool(tool, arguments)
            if result.is_error:
                raise RuntimeError(f"{tool}: {result.content[0].text}")
            return result.structured_content or {}

        call.client = c  # type: ignore[attr-defined]
        yield call


async def timed(n: int, fn: Callable[[], Awaitable[Any]], warmup: int = 20) -> list[float]:
    """Wall time in ms of ``n`` sequential calls, after a warm-up."""
    for _ in range(warmup):
        await fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        "n": len(ordered),
    }


class Report:
    """Rows of (what, figure, floor, ratio) printed as a table and written as JSON."""

    def __init__(self, name: str) -> None:
        self.name, self.rows = name, []

    def add(self, what: str, value: float, unit: str, floor: float | None = None, **extra: Any) -> None:
        ratio = None if not floor else value / floor
        self.rows.append({"what": what, "value": value, "unit": unit, "floor": floor, "ratio": ratio, **extra})
        floor_s = "" if floor is None else f"{floor:10.3f}"
        ratio_s = "" if ratio is None else f"{ratio:7.2f}x"
        print(f"  {what:<52} {value:10.3f} {unit:<6} {floor_s:>10} {ratio_s:>8}", flush=True)

    def header(self, title: str) -> None:
        print(f"\n{title}\n  {'what':<52} {'value':>10} {'unit':<6} {'floor':>10} {'ratio':>8}", flush=True)

    def save(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"{self.name}-{stamp}.json"
        path.write_text(json.dumps({"when": stamp, "rows": self.rows}, indent=2))
        return path

"""What the bench scripts share: run a job with bounded concurrency, timing each call, and print a table row.

Imported by the scripts as `from timing import ...` (they run as `uv run python bench/x.py`, so bench/ is on
sys.path)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable


async def timed(n: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Run job(0..n-1) with bounded concurrency; returns wall seconds and each call's latency."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            start = time.perf_counter()
            await job(i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start, latencies


def row(name: str, count: int, wall: float, latencies: list[float], unit: str = "ms") -> str:
    """| name | count | wall | rate | median | p99 |, latencies in ms or µs."""
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    scale = 1e6 if unit == "µs" else 1e3
    return (
        f"| {name} | {count:,} | {wall:.2f} s | {count / wall:,.0f}/s "
        f"| {statistics.median(ordered) * scale:.2f} {unit} | {p99 * scale:.2f} {unit} |"
    )

"""Cost of the fleet-wide token debit with adaptive shaping (the shaped_per_minute function in the statement)
against the statement it replaced, and of recording a rate-limit reply.

    uv run python bench/shaping_bucket.py               # 5,000 debits of each kind
    uv run python bench/shaping_bucket.py --count 1000

One worker debits TOKEN_CHUNK (20) tokens per statement, so one debit per 20 messages; a rate-limit reply
costs one short transaction. Runs against the local PostgreSQL in a fresh database, sequentially from one
connection pool (latency per statement, not contention); five interleaved rounds, the median of each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from isseimail_dispatcher.adaptive import Adaptation
from isseimail_dispatcher.limits import bucket_capacity, record_rate_limit, take_tokens
from isseimail_dispatcher.shaping import DomainLimit
from isseimail_shared.db import create_pool, migrate
from isseimail_testing.infra import create_database, drop_database

ROUNDS = 5
BEFORE = """
WITH seed AS (
    INSERT INTO domain_buckets (domain, tokens, refilled_at) VALUES ($1, $2, clock_timestamp())
    ON CONFLICT (domain) DO NOTHING
), cur AS (
    SELECT domain, LEAST($2, tokens + EXTRACT(EPOCH FROM clock_timestamp() - refilled_at) * $3) AS avail
    FROM domain_buckets WHERE domain = $1 FOR UPDATE
)
UPDATE domain_buckets b
SET tokens = cur.avail - GREATEST(0, LEAST(floor(cur.avail), $4)), refilled_at = clock_timestamp()
FROM cur WHERE b.domain = cur.domain
RETURNING GREATEST(0, LEAST(floor(cur.avail), $4))::int AS granted, b.tokens AS left_over
"""


async def timed(count: int, op: Callable[[int], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for i in range(count):
        await op(i)
    return (time.perf_counter() - started) / count * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    url = await create_database("isseimail_bench")
    try:
        pool = await create_pool(url, "dispatcher")
        await migrate(pool, "dispatcher", ["isseimail_shared.sql", "isseimail_dispatcher.migrations"])
        limit = DomainLimit(connections=10, per_minute=10_000_000)  # never runs dry: the debit itself is measured
        adapt = Adaptation(window=3600.0)
        cap, rate = bucket_capacity(limit), limit.per_minute / 60.0
        await take_tokens(pool, "before.example", limit, 0, adapt)
        await take_tokens(pool, "after.example", limit, 0, adapt)
        await take_tokens(pool, "throttled.example", limit, 0, adapt)
        await record_rate_limit(pool, "throttled.example", limit, adapt, "421 4.7.0 try again later")
        ops: list[tuple[str, int, Callable[[int], Awaitable[object]]]] = [
            (
                "debit, statement before shaping",
                args.count,
                lambda _: pool.fetchrow(BEFORE, "before.example", cap, rate, 20),
            ),
            (
                "debit, shaped (never throttled)",
                args.count,
                lambda _: take_tokens(pool, "after.example", limit, 20, adapt),
            ),
            (
                "debit, shaped (throttled domain)",
                args.count,
                lambda _: take_tokens(pool, "throttled.example", limit, 20, adapt),
            ),
            (
                "record a rate-limit reply",
                args.count // 5,
                lambda i: record_rate_limit(pool, f"d{i % 50}.example", limit, adapt, "421 4.7.0 try again later"),
            ),
        ]
        # Interleaved rounds, median of each: the machine is shared, so one long run per kind would measure
        # whatever else ran at that moment.
        samples: dict[str, list[float]] = {name: [] for name, _, _ in ops}
        for _ in range(ROUNDS):
            for name, count, op in ops:
                samples[name].append(await timed(max(1, count // ROUNDS), op))
        rows = [(name, statistics.median(values)) for name, values in samples.items()]
        await pool.close()
    finally:
        await drop_database(url)
    print("| operation | µs per statement | per message (20 per debit) |\n|---|---:|---:|")
    for name, micros in rows:
        per_message = f"{micros / 20:.1f} µs" if name.startswith("debit") else "—"
        print(f"| {name} | {micros:.0f} | {per_message} |")


if __name__ == "__main__":
    asyncio.run(main())

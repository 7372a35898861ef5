"""Bounce handling figures: the parser alone, and the listener of a real notifier process end to end.

    uv run python bench/notifier_bounces.py                       # 2,000 bounces, 50 concurrent senders
    uv run python bench/notifier_bounces.py --bounces 5000 --concurrency 100
    uv run python bench/notifier_bounces.py --parser-only         # no servers needed

The parser rows: every fixture under services/notifier/tests/bounces (the vendor-family folders too),
parsed repeatedly in-process, as messages per second by wall clock and by this process's CPU time (the CPU
figure is the steadier one on a shared machine).

Needs PostgreSQL and RabbitMQ as for the tests (not with --parser-only). Parses the fixtures, then starts
one notifier (`python -m isseimail_notifier`) on a fresh database and vhost and delivers N DSNs to
authenticated VERP addresses through SMTP with bounded concurrency; each 250 means the bounce, its failure
row, suppression update and delivery.bounced outbox row are committed. Prints one table: what, count, wall
time, rate, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
from notifier_process import running_notifier, send_mail
from timing import row, timed

from isseimail_notifier.bounce_parser import parse_bounce
from isseimail_shared.verp import bounce_address

FIXTURES = Path(__file__).resolve().parent.parent / "services" / "notifier" / "tests" / "bounces"
SECRET = "bench-verp-secret"  # noqa: S105 - a throwaway HMAC key for the bench run
DOMAIN = "bounce.isseimail.localhost"


def bench_parser(rounds: int) -> list[str]:
    samples = [p.read_bytes() for p in sorted(FIXTURES.rglob("*.eml"))]
    latencies = []
    cpu = time.process_time()
    start = time.perf_counter()
    for _ in range(rounds):
        for raw in samples:
            t = time.perf_counter()
            parse_bounce(raw)
            latencies.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return [
        row(f"parse ({len(samples)} fixtures), wall clock", len(latencies), wall, latencies),
        f"| parse, CPU time of this process | {len(latencies):,} | {cpu:.2f} s | {len(latencies) / cpu:,.0f}/s | | |",
    ]


def dsn(recipient: str) -> bytes:
    template = (FIXTURES / "postfix-userunknown.eml").read_bytes()
    return template.replace(b"nobody-here@example.co.jp", recipient.encode())


async def bench_listener(bounces: int, concurrency: int) -> str:
    async with running_notifier(SECRET, DOMAIN, "bench-notifier.log") as notifier:
        campaign = uuid.uuid4()

        async def send(i: int) -> None:
            rcpt = bounce_address(SECRET.encode(), DOMAIN, campaign, i + 1)
            await send_mail(notifier.smtp_port, rcpt, dsn(f"user{i}@example.jp"))

        wall, latencies = await timed(bounces, concurrency, send)
        conn = await asyncpg.connect(notifier.database_url, server_settings={"search_path": "notifier"})
        try:
            stored = await conn.fetchval("SELECT count(*) FROM bounces")
            events = await conn.fetchval("SELECT count(*) FROM outbox WHERE routing_key = 'delivery.bounced'")
        finally:
            await conn.close()
        assert stored == bounces, f"stored {stored} of {bounces}"
        assert events == bounces, f"{events} delivery.bounced events for {bounces} bounces"
        return row(f"listener, {concurrency} concurrent senders", bounces, wall, latencies)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bounces", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--parse-rounds", type=int, default=40)
    parser.add_argument("--parser-only", action="store_true", help="only the in-process parser rows")
    args = parser.parse_args()
    lines = ["| what | count | wall | rate | p50 | p99 |", "|---|---:|---:|---:|---:|---:|"]
    lines.extend(bench_parser(args.parse_rounds))
    if not args.parser_only:
        lines.append(await bench_listener(args.bounces, args.concurrency))
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())

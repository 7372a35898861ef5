"""Unsubscribe and complaint figures: the token on the dispatcher's hot path, the notifier's answers to valid,
forged and unknown tokens (is a forged token told apart by its timing?), mailto unsubscribes and ARF reports
through the real listener.

    uv run python bench/unsubscribe.py                    # 1,000 of each, 20 concurrent
    uv run python bench/unsubscribe.py --count 3000 --concurrency 50

Needs PostgreSQL and RabbitMQ as for the tests. Starts one notifier (`python -m isseimail_notifier`) on a
fresh database and vhost, writes a campaign and its deliveries straight into the notifier's tables (what
campaign.accepted and delivery.succeeded would have written), then asks `GET /internal/unsubscribes/{token}`
(what the gateway's page asks) sequentially for valid, forged (right delivery, wrong MAC) and unknown
(no such delivery) tokens, interleaved so that machine noise hits all three alike; then sends mailto
unsubscribes and feedback reports over SMTP with bounded concurrency. Prints one table.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from notifier_process import running_notifier, send_mail
from timing import row, timed

from isseimail_shared.unsubscribe import mailto_address, make_token, read_token, verify
from isseimail_shared.verp import bounce_address
from isseimail_testing.fixtures import INTERNAL_HEADERS

FEEDBACK = Path(__file__).resolve().parent.parent / "services" / "notifier" / "tests" / "feedback"
SECRET = "bench-verp-secret"  # noqa: S105 - a throwaway HMAC key for the bench run
DOMAIN = "bounce.isseimail.localhost"
ORG = "corp.example.jp"
MAILBOX = "someone@example.org"  # unsubscribes and reports come from a mailbox, not a null sender


def bench_tokens(n: int) -> list[str]:
    secret = SECRET.encode()
    campaign = uuid.uuid4()
    made, checked = [], []
    start = time.perf_counter()
    tokens = []
    for i in range(n):
        t = time.perf_counter()
        tokens.append(make_token(secret, campaign, i, f"user{i}@example.jp", ORG))
        made.append(time.perf_counter() - t)
    wall_make = time.perf_counter() - start
    start = time.perf_counter()
    for i, token in enumerate(tokens):
        t = time.perf_counter()
        ref = read_token(token)
        assert ref is not None
        assert verify(secret, ref, f"user{i}@example.jp", ORG)
        checked.append(time.perf_counter() - t)
    wall_check = time.perf_counter() - start
    return [
        row("make_token (per message sent)", n, wall_make, made, "µs"),
        row("read + verify", n, wall_check, checked, "µs"),
    ]


async def bench_notifier(count: int, concurrency: int) -> list[str]:
    secret = SECRET.encode()
    lines: list[str] = []
    async with running_notifier(SECRET, DOMAIN, "bench-unsub.log") as notifier:
        campaign = uuid.uuid4()
        total = 3 * count
        conn = await asyncpg.connect(notifier.database_url, server_settings={"search_path": "notifier"})
        try:
            await conn.execute(
                "INSERT INTO campaigns (campaign_id, sender_email, subject) VALUES ($1, $2, 'bench')",
                campaign,
                f"koho@{ORG}",
            )
            await conn.copy_records_to_table(
                "deliveries",
                records=[(campaign, i, f"user{i}@example.jp") for i in range(total)],
                columns=["campaign_id", "delivery_id", "recipient"],
            )
        finally:
            await conn.close()

        valid = [make_token(secret, campaign, i, f"user{i}@example.jp", ORG) for i in range(count)]
        forged = [make_token(b"not-the-key", campaign, i, f"user{i}@example.jp", ORG) for i in range(count)]
        unknown = [make_token(secret, campaign, total + i, f"user{i}@example.jp", ORG) for i in range(count)]
        timings: dict[str, list[float]] = {"valid": [], "forged": [], "unknown": []}
        async with httpx.AsyncClient(base_url=notifier.http_url, headers=INTERNAL_HEADERS) as client:
            for _kind, token in [("valid", valid[0]), ("forged", forged[0]), ("unknown", unknown[0])] * 20:
                await client.get(f"/internal/unsubscribes/{token}")  # warm-up
            start = time.perf_counter()
            for i in range(count):
                for kind, tokens, expected in (
                    ("valid", valid, 200),
                    ("forged", forged, 404),
                    ("unknown", unknown, 404),
                ):
                    t = time.perf_counter()
                    response = await client.get(f"/internal/unsubscribes/{tokens[i]}")
                    timings[kind].append(time.perf_counter() - t)
                    assert response.status_code == expected, (kind, response.status_code)
            wall = (time.perf_counter() - start) / 3
        for kind in ("valid", "forged", "unknown"):
            lines.append(row(f"GET token check, {kind} (sequential)", count, wall, timings[kind]))

        async def unsubscribe(i: int) -> None:
            token = make_token(secret, campaign, count + i, f"user{count + i}@example.jp", ORG)
            await send_mail(notifier.smtp_port, mailto_address(token, DOMAIN), b"Subject: unsubscribe\r\n\r\n", MAILBOX)

        wall, latencies = await timed(count, concurrency, unsubscribe)
        lines.append(row(f"mailto unsubscribe via SMTP, {concurrency} concurrent", count, wall, latencies))

        template = (FEEDBACK / "provider-headers-only.eml").read_bytes().replace(b"@@LIST_UNSUBSCRIBE@@", b"")

        async def complain(i: int) -> None:
            verp = bounce_address(secret, DOMAIN, campaign, 2 * count + i)
            await send_mail(
                notifier.smtp_port, f"fbl@{DOMAIN}", template.replace(b"@@RETURN_PATH@@", verp.encode()), MAILBOX
            )

        wall, latencies = await timed(count, concurrency, complain)
        lines.append(row(f"ARF report to fbl@ via SMTP, {concurrency} concurrent", count, wall, latencies))
        conn = await asyncpg.connect(notifier.database_url, server_settings={"search_path": "notifier"})
        try:
            kinds = dict(await conn.fetch("SELECT kind, count(*) FROM suppressions GROUP BY kind"))
        finally:
            await conn.close()
        assert kinds == {"unsubscribed": count, "complained": count}, kinds
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--token-rounds", type=int, default=100_000)
    args = parser.parse_args()
    lines = ["| what | count | wall | rate | p50 | p99 |", "|---|---:|---:|---:|---:|---:|"]
    lines += bench_tokens(args.token_rounds)
    lines += await bench_notifier(args.count, args.concurrency)
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())

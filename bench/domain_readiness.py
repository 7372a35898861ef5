"""What sender-domain readiness costs a send: one report built against DNS (cold) vs taken from the cache, as
the composer's ready-check runs it before the pass is consumed.

    uv run python bench/domain_readiness.py              # 20 rounds per row
    uv run python bench/domain_readiness.py --rounds 50

The zones are the test DNS server's (dnslib on loopback), a good domain with an SPF include, a DKIM key, DMARC
and a bounce MX; a stand-in dispatcher answers the DKIM key contract over HTTP on loopback. "latency" rows make
every answer wait that long (a slow resolver); the checks run concurrently, so a report costs a few round
trips, not one per query. Prints one table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "services" / "composer" / "tests"))

from deliverability_support import DkimPeer, good_domain, readiness_settings

from isseimail_composer.deliverability.report import ReadinessChecker
from isseimail_testing.dns import DnsServer
from isseimail_testing.http import serving_peer


async def run(rounds: int) -> list[tuple[str, float, float, float]]:
    rows = []
    dns = DnsServer()
    dns.start()
    try:
        async with serving_peer(DkimPeer()) as peer:
            for latency in (0.0, 0.02, 0.05):
                dns.clear()
                domain = good_domain(dns, peer)
                for zone in list(dns._zones.values()):  # every zone of the good domain, slowed
                    zone.delay = latency
                for mode in ("relay", "mx"):
                    checker = ReadinessChecker.from_settings(readiness_settings(dns, peer, delivery_mode=mode))
                    cold = []
                    queries = 0
                    for _ in range(rounds):
                        before = sum(dns.queries.values())
                        start = time.perf_counter()
                        await checker.report(domain, fresh=True)
                        cold.append(time.perf_counter() - start)
                        queries = sum(dns.queries.values()) - before
                    warm = []
                    for _ in range(rounds):
                        start = time.perf_counter()
                        await checker.report(domain)
                        warm.append(time.perf_counter() - start)
                    await checker.close()
                    label = f"{mode}, DNS latency {latency * 1000:.0f} ms"
                    rows.append((label, queries, statistics.median(cold) * 1000, statistics.median(warm) * 1e6))
    finally:
        dns.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rows = asyncio.run(run(args.rounds))
    print(f"# domain readiness, {os.cpu_count()} cores, Python {platform.python_version()}, {args.rounds} rounds")
    print("| case | DNS queries per report | cold report (median ms) | cached report (median µs) |")
    print("|---|---|---|---|")
    for label, queries, cold, warm in rows:
        print(f"| {label} | {queries:.0f} | {cold:.1f} | {warm:.0f} |")


if __name__ == "__main__":
    main()

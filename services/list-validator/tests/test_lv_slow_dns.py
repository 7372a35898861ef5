"""A domain whose DNS answers slowly (but within the configured timeout) is verified, not blocked."""

from __future__ import annotations

import asyncio

from isseimail_list_validator.domain_check import DomainChecker
from isseimail_testing.dns import DnsServer


async def test_slow_domain_after_many_fast_ones_is_still_verified(dns_server: DnsServer) -> None:
    """After 50 fast answers, a domain answering in 1 s (timeout 3 s) is ok; SERVFAIL stays unverified."""
    for i in range(50):
        dns_server.zone(f"fast{i}.example.jp", mx=[(10, f"mx.fast{i}.example.jp")])
    dns_server.zone("slow.example.jp", mx=[(10, "mx.slow.example.jp")], delay=1.0)
    dns_server.zone("broken.example.jp", servfail=True)
    checker = DomainChecker([dns_server.nameserver], timeout=3.0, attempts=2)
    try:
        fast = await asyncio.gather(*(checker.check(f"fast{i}.example.jp") for i in range(50)))
        slow = await checker.check("slow.example.jp")
        broken = await checker.check("broken.example.jp")
    finally:
        await checker.close()
    assert {r.code for r in fast} == {"ok"}
    assert slow.code == "ok"
    assert slow.mx == ["mx.slow.example.jp"]
    assert broken.code == "dns_unverified"

"""Fleet-wide politeness in PostgreSQL: token buckets and connection leases shared by every worker."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from isseimail_dispatcher.limits import acquire_lease, release_lease, renew_leases, take_tokens
from isseimail_dispatcher.settings import DomainLimit


async def take(pool: asyncpg.Pool, limit: DomainLimit, want: int) -> tuple[int, float]:
    granted, wait = await take_tokens(pool, "example.jp", limit, want)
    if granted == 0 and wait == 0.0:  # the first call only seeds the bucket
        granted, wait = await take_tokens(pool, "example.jp", limit, want)
    return granted, wait


async def test_bucket_grants_its_burst_then_its_rate(pool: asyncpg.Pool) -> None:
    """60/min holds 6 tokens: 6 granted at once, then about one per second, never more."""
    limit = DomainLimit(connections=1, per_minute=60)
    granted, _ = await take(pool, limit, 10)
    assert granted == 6
    granted, wait = await take(pool, limit, 10)
    assert granted == 0
    assert 0.5 < wait <= 1.0
    await asyncio.sleep(wait + 0.05)
    granted, _ = await take(pool, limit, 10)
    assert granted == 1


async def test_concurrent_takers_never_exceed_the_bucket(pool: asyncpg.Pool) -> None:
    """Twenty workers debiting at once get exactly the bucket's tokens between them (atomic debit)."""
    limit = DomainLimit(connections=1, per_minute=600)  # holds 60
    await take(pool, limit, 0)
    results = await asyncio.gather(*(take_tokens(pool, "example.jp", limit, 7) for _ in range(20)))
    total = sum(g for g, _ in results)
    assert 60 <= total <= 62  # 60 plus what refills (10/s) during the few ms the statements take


async def test_connection_leases_are_fleet_wide_and_lapse(pool: asyncpg.Pool) -> None:
    """Two slots: a third holder waits; a released slot is reusable; an unrenewed one lapses after its TTL."""
    limit = DomainLimit(connections=2, per_minute=600)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    lease_a = await acquire_lease(pool, "example.jp", limit, a, ttl=0.5)
    lease_b = await acquire_lease(pool, "example.jp", limit, b, ttl=60)
    assert lease_a is not None
    assert lease_b is not None
    assert {lease_a.slot, lease_b.slot} == {0, 1}
    assert await acquire_lease(pool, "example.jp", limit, c, ttl=60) is None
    assert await acquire_lease(pool, "other.jp", limit, c, ttl=60) is not None  # per domain
    await release_lease(pool, lease_b, b)
    lease_c = await acquire_lease(pool, "example.jp", limit, c, ttl=60)
    assert lease_c is not None
    assert lease_c.slot == lease_b.slot
    started = time.monotonic()
    while (late := await acquire_lease(pool, "example.jp", limit, b, ttl=60)) is None:
        assert time.monotonic() - started < 3
        await asyncio.sleep(0.05)
    assert late.slot == lease_a.slot  # a never renewed its lease


async def test_renewed_lease_does_not_lapse(pool: asyncpg.Pool) -> None:
    """A worker that renews keeps its slot past the original TTL."""
    limit = DomainLimit(connections=1, per_minute=600)
    a, b = uuid.uuid4(), uuid.uuid4()
    assert await acquire_lease(pool, "example.jp", limit, a, ttl=0.4) is not None
    for _ in range(4):
        await asyncio.sleep(0.2)
        await renew_leases(pool, a, 0.4)
        assert await acquire_lease(pool, "example.jp", limit, b, ttl=60) is None

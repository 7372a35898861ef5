"""Fleet-wide politeness per destination domain, kept in PostgreSQL so that every worker sees it.

- Messages per minute: one token bucket row per domain, refilled by elapsed time and debited
  atomically (row lock) for a chunk of messages at a time, so a busy domain costs one statement per
  chunk, not per message.
- Concurrent connections: numbered lease rows (domain, slot); a worker holds one slot per open
  stream to the domain and renews it; a dead worker's slot lapses after the lease TTL.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from isseimail_dispatcher.settings import DomainLimit

BURST_SECONDS = 6.0  # a bucket holds at most this many seconds of its rate


def bucket_capacity(limit: DomainLimit) -> float:
    return max(1.0, limit.per_minute / 60.0 * BURST_SECONDS)


async def take_tokens(pool: asyncpg.Pool, domain: str, limit: DomainLimit, want: int) -> tuple[int, float]:
    """Debit up to `want` tokens; returns (granted, seconds until one more token is available)."""
    rate = limit.per_minute / 60.0
    cap = bucket_capacity(limit)
    row = await pool.fetchrow(
        """
        WITH seed AS (
            INSERT INTO domain_buckets (domain, tokens, refilled_at) VALUES ($1, $2, clock_timestamp())
            ON CONFLICT (domain) DO NOTHING
        ), cur AS (
            SELECT domain,
                   LEAST($2, tokens + EXTRACT(EPOCH FROM clock_timestamp() - refilled_at) * $3) AS avail
            FROM domain_buckets WHERE domain = $1 FOR UPDATE
        )
        UPDATE domain_buckets b
        SET tokens = cur.avail - GREATEST(0, LEAST(floor(cur.avail), $4)), refilled_at = clock_timestamp()
        FROM cur WHERE b.domain = cur.domain
        RETURNING GREATEST(0, LEAST(floor(cur.avail), $4))::int AS granted, b.tokens AS left_over
        """,
        domain,
        cap,
        rate,
        want,
    )
    if row is None:  # first use of the domain: the seed row is visible to the next statement
        return 0, 0.0
    granted: int = row["granted"]
    wait = 0.0 if granted else max(0.01, (1.0 - float(row["left_over"])) / rate)
    return granted, wait


class Lease:
    """One connection slot towards a domain, held by one worker process."""

    def __init__(self, domain: str, slot: int) -> None:
        self.domain = domain
        self.slot = slot


async def acquire_lease(
    pool: asyncpg.Pool, domain: str, limit: DomainLimit, holder: uuid.UUID, ttl: float
) -> Lease | None:
    """A free (or lapsed) slot for the domain, or None when all are held."""
    slot = await pool.fetchval(
        """
        WITH free AS (
            SELECT s FROM generate_series(0, $3 - 1) AS s
            WHERE NOT EXISTS (SELECT 1 FROM domain_leases l
                              WHERE l.domain = $1 AND l.slot = s AND l.expires_at > clock_timestamp())
            ORDER BY random() LIMIT 1
        )
        INSERT INTO domain_leases (domain, slot, holder, expires_at)
        SELECT $1, s, $2, clock_timestamp() + make_interval(secs => $4) FROM free
        ON CONFLICT (domain, slot) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
        WHERE domain_leases.expires_at <= clock_timestamp()
        RETURNING slot
        """,
        domain,
        holder,
        limit.connections,
        ttl,
    )
    return None if slot is None else Lease(domain, slot)


async def wait_for_lease(
    pool: asyncpg.Pool, domain: str, limit: DomainLimit, holder: uuid.UUID, ttl: float, poll: float = 0.2
) -> Lease:
    while True:
        lease = await acquire_lease(pool, domain, limit, holder, ttl)
        if lease is not None:
            return lease
        await asyncio.sleep(poll)


async def renew_leases(pool: asyncpg.Pool, holder: uuid.UUID, ttl: float) -> None:
    await pool.execute(
        "UPDATE domain_leases SET expires_at = clock_timestamp() + make_interval(secs => $2) WHERE holder = $1",
        holder,
        ttl,
    )


async def release_lease(pool: asyncpg.Pool, lease: Lease, holder: uuid.UUID) -> None:
    await pool.execute(
        "DELETE FROM domain_leases WHERE domain = $1 AND slot = $2 AND holder = $3", lease.domain, lease.slot, holder
    )

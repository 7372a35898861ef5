"""Fleet-wide politeness per destination domain, kept in PostgreSQL so that every worker sees it.

- Messages per minute: one token bucket row per domain, refilled by elapsed time and debited
  atomically (row lock) for a chunk of messages at a time, so a busy domain costs one statement per
  chunk, not per message.
- Concurrent connections: numbered lease rows (domain, slot); a worker holds one slot per open
  stream to the domain and renews it; a dead worker's slot lapses after the lease TTL.
- Adaptive shaping: the bucket row also holds the domain's lowered rate after rate-limit replies
  (adaptive.py), which every worker's next debit obeys.
- Relay mode: the relay has a bucket row of its own (`relay:HOST:PORT`, see shaping_targets.py) that every
  message also debits, and that the relay's rate-limit replies lower.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg

from isseimail_dispatcher.adaptive import Adaptation, ThrottleState, after_rate_limit, effective_per_minute, step
from isseimail_dispatcher.shaping import DomainLimit

BURST_SECONDS = 6.0  # a bucket holds at most this many seconds of its rate
DEFAULT_ADAPTATION = Adaptation()


def bucket_capacity(limit: DomainLimit) -> float:
    return max(1.0, limit.per_minute / 60.0 * BURST_SECONDS)


async def take_tokens(
    pool: asyncpg.Pool, domain: str, limit: DomainLimit, want: int, adapt: Adaptation = DEFAULT_ADAPTATION
) -> tuple[int, float]:
    """Debit up to `want` tokens; returns (granted, seconds until one more token is available).

    The rate is the domain's shaped rate (lowered after rate-limit replies, see adaptive.py); the bucket's
    capacity follows it, so a throttled domain gets no burst at the configured rate.
    """
    row = await pool.fetchrow(
        """
        WITH seed AS (
            INSERT INTO domain_buckets (domain, tokens, refilled_at) VALUES ($1, $2, clock_timestamp())
            ON CONFLICT (domain) DO NOTHING
        ), cur AS (
            SELECT domain, tokens, refilled_at,
                   shaped_per_minute(lowered_per_minute, throttled_at, $4, $5, $6, clock_timestamp()) / 60.0 AS rate
            FROM domain_buckets WHERE domain = $1 FOR UPDATE
        ), avail AS (
            SELECT domain, rate,
                   LEAST(GREATEST(1.0, rate * $7),
                         tokens + EXTRACT(EPOCH FROM clock_timestamp() - refilled_at)::double precision * rate) AS n
            FROM cur
        )
        UPDATE domain_buckets b
        SET tokens = a.n - GREATEST(0, LEAST(floor(a.n), $3)), refilled_at = clock_timestamp()
        FROM avail a WHERE b.domain = a.domain
        RETURNING GREATEST(0, LEAST(floor(a.n), $3))::int AS granted, b.tokens AS left_over, a.rate
        """,
        domain,
        bucket_capacity(limit),
        want,
        float(limit.per_minute),
        step(limit.per_minute, adapt),
        adapt.window,
        BURST_SECONDS,
    )
    if row is None:  # first use of the domain: the seed row is visible to the next statement
        return 0, 0.0
    granted: int = row["granted"]
    wait = 0.0 if granted else max(0.01, (1.0 - float(row["left_over"])) / float(row["rate"]))
    return granted, wait


async def take_tokens_all(
    pool: asyncpg.Pool, buckets: list[tuple[str, DomainLimit]], want: int, adapt: Adaptation = DEFAULT_ADAPTATION
) -> tuple[int, float]:
    """Debit the same number of tokens from every bucket (the domain's, and the relay's in relay mode): as
    many as the emptiest grants; what the others granted beyond that is given back."""
    taken: list[tuple[str, int]] = []
    granted, wait = want, 0.0
    for key, limit in buckets:
        got, wait = await take_tokens(pool, key, limit, granted, adapt)
        taken.append((key, got))
        granted = got
        if granted == 0:
            break
    for key, got in taken:
        if got > granted:
            await pool.execute("UPDATE domain_buckets SET tokens = tokens + $2 WHERE domain = $1", key, got - granted)
    return granted, wait


@dataclass(frozen=True)
class RateLimited:
    """What a rate-limit reply did to a domain's shaping."""

    state: ThrottleState
    per_minute: float  # the rate in force now
    decreased: bool  # False: within the hold of the last decrease, only the window restarted


_STATE_COLUMNS = (
    "lowered_per_minute, EXTRACT(EPOCH FROM throttled_at)::double precision AS throttled_at, "
    "EXTRACT(EPOCH FROM decreased_at)::double precision AS decreased_at, "
    "EXTRACT(EPOCH FROM now())::double precision AS now"
)


def state_of(row: asyncpg.Record) -> ThrottleState:
    return ThrottleState(row["lowered_per_minute"], row["throttled_at"], row["decreased_at"])


async def record_rate_limit(
    pool: asyncpg.Pool, domain: str, limit: DomainLimit, adapt: Adaptation, reply: str
) -> RateLimited:
    """Lower the domain's fleet-wide rate after a rate-limit reply (see adaptive.after_rate_limit)."""
    ceiling = float(limit.per_minute)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO domain_buckets (domain, tokens, refilled_at) VALUES ($1, 0, clock_timestamp()) "
            "ON CONFLICT (domain) DO NOTHING",
            domain,
        )
        row = await conn.fetchrow(f"SELECT {_STATE_COLUMNS} FROM domain_buckets WHERE domain = $1 FOR UPDATE", domain)
        assert row is not None
        now: float = row["now"]
        new = after_rate_limit(state_of(row), ceiling, adapt, now)
        decreased = new.decreased_at == now
        # A decrease also empties the bucket: the fleet pauses for one token at the new rate.
        await conn.execute(
            "UPDATE domain_buckets SET lowered_per_minute = $2, throttled_at = to_timestamp($3), "
            "decreased_at = to_timestamp($4), throttle_events = throttle_events + 1, last_reply = $5, "
            "tokens = CASE WHEN $6 THEN 0 ELSE tokens END, "
            "refilled_at = CASE WHEN $6 THEN clock_timestamp() ELSE refilled_at END WHERE domain = $1",
            domain,
            new.lowered,
            new.throttled_at,
            new.decreased_at,
            reply[:500],
            decreased,
        )
    return RateLimited(new, effective_per_minute(new, ceiling, adapt, now), decreased)


async def throttle_states(pool: asyncpg.Pool, domains: list[str], recent: float, most: int) -> list[asyncpg.Record]:
    """Adaptive state of the given domains and of up to `most` domains throttled in the last `recent` seconds."""
    return list(
        await pool.fetch(
            f"SELECT domain, {_STATE_COLUMNS} FROM domain_buckets WHERE domain = ANY($1::text[]) "
            "UNION "
            f"(SELECT domain, {_STATE_COLUMNS} FROM domain_buckets "
            "WHERE throttled_at > clock_timestamp() - make_interval(secs => $2) ORDER BY throttled_at DESC LIMIT $3)",
            domains,
            recent,
            most,
        )
    )


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

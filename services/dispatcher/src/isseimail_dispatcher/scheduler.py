"""Moves batches onto the work queue: new batches, due retries, and batches whose worker died.

One loop in every `serve` process; replicas share it through FOR UPDATE SKIP LOCKED. A batch row is
marked published only after the broker confirmed it, so a broker outage only delays publishing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import asyncpg

from isseimail_dispatcher.accept import BATCHES_NOTIFY
from isseimail_dispatcher.metrics import CAMPAIGNS_IN_FLIGHT, RETRY_BACKLOG
from isseimail_dispatcher.work_messages import BatchMessage
from isseimail_shared.db import Wakeup
from isseimail_shared.messaging import Broker

log = logging.getLogger(__name__)

PUBLISH_CHUNK = 500
RETRY_CHUNK = 5000
RETRY_BACKLOG_SQL = "SELECT count(*) FROM deliveries WHERE next_attempt_at IS NOT NULL"  # deliveries_due only


async def publish_batches(pool: asyncpg.Pool, broker: Broker) -> int:
    async with pool.acquire() as conn, conn.transaction():
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM batches WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                PUBLISH_CHUNK,
            )
        ]
        if not ids:
            return 0
        await asyncio.gather(*(broker.publish_work(BatchMessage(batch_id=i)) for i in ids))
        await conn.execute("UPDATE batches SET published_at = now() WHERE id = ANY($1::bigint[])", ids)
    return len(ids)


async def schedule_retries(pool: asyncpg.Pool, batch_size: int) -> int:
    """Put due retries into new batches (grouped by campaign and domain); returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        due = await conn.fetch(
            "SELECT d.id, d.campaign_id, d.domain FROM deliveries d JOIN campaigns c USING (campaign_id) "
            "WHERE d.next_attempt_at <= now() AND d.state = 'retrying' AND c.status = 'dispatching' "
            "ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED",
            RETRY_CHUNK,
        )
        groups: dict[tuple[object, str], list[int]] = defaultdict(list)
        for row in due:
            groups[(row["campaign_id"], row["domain"])].append(row["id"])
        for (campaign_id, domain), ids in groups.items():
            for start in range(0, len(ids), batch_size):
                batch_id = await conn.fetchval(
                    "INSERT INTO batches (campaign_id, domain) VALUES ($1, $2) RETURNING id", campaign_id, domain
                )
                await conn.execute(
                    "UPDATE deliveries SET batch_id = $1, next_attempt_at = NULL WHERE id = ANY($2::bigint[])",
                    batch_id,
                    ids[start : start + batch_size],
                )
    return len(due)


async def sweep_lapsed(pool: asyncpg.Pool) -> int:
    """Batches claimed by a worker that stopped renewing its claim go back to the queue."""
    rows = await pool.fetch(
        "UPDATE batches SET claimed_by = NULL, claimed_until = NULL, published_at = NULL "
        "WHERE done_at IS NULL AND claimed_by IS NOT NULL AND claimed_until < now() RETURNING id"
    )
    if rows:
        log.warning("requeueing %d batches whose worker stopped", len(rows))
    return len(rows)


async def run_scheduler(pool: asyncpg.Pool, broker: Broker, batch_size: int, interval: float) -> None:
    wakeup = Wakeup(pool, BATCHES_NOTIFY)
    try:
        while True:
            try:
                await sweep_lapsed(pool)
                await schedule_retries(pool, batch_size)
                while await publish_batches(pool, broker) == PUBLISH_CHUNK:
                    pass
                RETRY_BACKLOG.set(await pool.fetchval(RETRY_BACKLOG_SQL) or 0)
                CAMPAIGNS_IN_FLIGHT.set(
                    await pool.fetchval("SELECT count(*) FROM campaigns WHERE status IN ('accepted', 'dispatching')")
                    or 0
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Database or broker away: nothing is marked, everything waits for the next round.
                log.warning("scheduler round failed: %s", exc.__class__.__name__)
            await wakeup.wait(interval)
    finally:
        await wakeup.close()

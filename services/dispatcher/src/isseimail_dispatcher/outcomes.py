"""Delivery state changes and the events that go with them, each in one transaction.

pending -> sending -> sent | retrying | failed. Every write is conditional on the row still being
`sending`, so repeating it (after a lost commit acknowledgement) changes nothing and emits nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from dataclasses import dataclass

import asyncpg

from isseimail_shared.events import (
    CampaignCompleted,
    CampaignPaused,
    DeliveryFailed,
    DeliverySucceeded,
    encode,
    envelope_for,
)
from isseimail_shared.outbox import add_event

log = logging.getLogger(__name__)

MAX_BACKOFF = 3600.0


@dataclass(frozen=True)
class Outcome:
    code: int | None
    enhanced: str | None
    text: str


@dataclass(frozen=True)
class CampaignInfo:
    campaign_id: uuid.UUID
    sender_email: str
    subject: str


def backoff(attempts: int, base: float) -> float:
    """Exponential with full jitter between half and one and a half of the step; capped at an hour."""
    step: float = min(MAX_BACKOFF, base * float(2 ** max(0, attempts - 1)))
    jitter: float = random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not security
    return step * jitter


async def record_sent(
    pool: asyncpg.Pool, campaign: CampaignInfo, delivery_id: int, email: str, row_number: int, o: Outcome
) -> None:
    """The hot path: state change and outbox row in ONE statement (one round trip, one commit).

    Equivalent to add_event() inside a transaction, minus its NOTIFY: NOTIFY serialises committing
    transactions on a global lock, and delivery.succeeded can wait for the relay's next poll.
    """
    envelope = envelope_for(
        DeliverySucceeded(
            campaign_id=campaign.campaign_id,
            delivery_id=delivery_id,
            recipient=email,
            smtp_code=o.code or 250,
            row_number=row_number or None,  # 0 is the sender's own copy, not a CSV row
        )
    )
    await pool.execute(
        "WITH done AS ("
        " UPDATE deliveries SET state = 'sent', attempts = attempts + 1, finished_at = now(),"
        " first_attempt_at = coalesce(first_attempt_at, now()), smtp_code = $2, enhanced_status = $3,"
        " diagnostic = $4 WHERE id = $1 AND state = 'sending' RETURNING id)"
        " INSERT INTO outbox (event_id, routing_key, body) SELECT $5, $6, $7 FROM done",
        delivery_id,
        o.code,
        o.enhanced,
        o.text,
        envelope.event_id,
        envelope.type,
        encode(envelope),
    )


async def record_failed(
    pool: asyncpg.Pool, campaign: CampaignInfo, delivery_id: int, email: str, row_number: int, o: Outcome
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _fail(conn, campaign, delivery_id, email, row_number, o)


async def _fail(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    campaign: CampaignInfo,
    delivery_id: int,
    email: str,
    row_number: int,
    o: Outcome,
) -> None:
    done = await conn.fetchval(
        "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, finished_at = now(), "
        "first_attempt_at = coalesce(first_attempt_at, now()), next_attempt_at = NULL, smtp_code = $2, "
        "enhanced_status = $3, diagnostic = $4 WHERE id = $1 AND state = 'sending' RETURNING true",
        delivery_id,
        o.code,
        o.enhanced,
        o.text,
    )
    if done:
        await add_event(
            conn,
            DeliveryFailed(
                campaign_id=campaign.campaign_id,
                delivery_id=delivery_id,
                recipient=email,
                row_number=row_number or None,
                sender_email=campaign.sender_email,
                subject=campaign.subject,
                smtp_code=o.code,
                enhanced_status=o.enhanced,
                diagnostic=o.text or "delivery failed",
            ),
        )


async def record_temporary(
    pool: asyncpg.Pool,
    campaign: CampaignInfo,
    delivery_id: int,
    email: str,
    row_number: int,
    o: Outcome,
    *,
    base: float,
    max_age: float,
) -> bool:
    """Schedule a retry, or fail the recipient when it has been retried for `max_age`; True if failed."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT attempts, coalesce(first_attempt_at, now()) AS first FROM deliveries "
            "WHERE id = $1 AND state = 'sending' FOR UPDATE",
            delivery_id,
        )
        if row is None:
            return False
        age = (dt.datetime.now(dt.UTC) - row["first"]).total_seconds()
        delay = backoff(row["attempts"] + 1, base)
        if age + delay > max_age:
            text = f"{o.text} (retried for {age / 3600:.1f} h)"
            await _fail(conn, campaign, delivery_id, email, row_number, Outcome(o.code, o.enhanced, text))
            return True
        await conn.execute(
            "UPDATE deliveries SET state = 'retrying', attempts = attempts + 1, "
            "first_attempt_at = coalesce(first_attempt_at, now()), "
            "next_attempt_at = now() + make_interval(secs => $2), smtp_code = $3, enhanced_status = $4, "
            "diagnostic = $5 WHERE id = $1",
            delivery_id,
            delay,
            o.code,
            o.enhanced,
            o.text,
        )
    return False


async def check_campaign(
    pool: asyncpg.Pool, campaign: CampaignInfo, *, pause_rate: float, pause_min: int
) -> str | None:
    """Complete the campaign when every recipient is final, or pause it on too many hard failures.

    Returns the new status when this call changed it. The conditional UPDATE on the campaign row makes
    the event exactly-once even when several workers finish batches of the same campaign together.
    """
    async with pool.acquire() as conn, conn.transaction():
        counts = await conn.fetchrow(
            "SELECT count(*) AS total, count(*) FILTER (WHERE state = 'sent') AS sent, "
            "count(*) FILTER (WHERE state = 'failed') AS failed FROM deliveries WHERE campaign_id = $1",
            campaign.campaign_id,
        )
        assert counts is not None
        total, sent, failed = counts["total"], counts["sent"], counts["failed"]
        if sent + failed == total:
            row = await conn.fetchrow(
                "UPDATE campaigns SET status = 'completed', finished_at = now(), "
                "started_at = coalesce(started_at, now()) WHERE campaign_id = $1 AND status <> 'completed' "
                "RETURNING started_at, finished_at",
                campaign.campaign_id,
            )
            if row is not None:
                await add_event(
                    conn,
                    CampaignCompleted(
                        campaign_id=campaign.campaign_id,
                        sender_email=campaign.sender_email,
                        subject=campaign.subject,
                        total=total,
                        sent=sent,
                        failed=failed,
                        started_at=row["started_at"],
                        finished_at=row["finished_at"],
                    ),
                )
                return "completed"
            return None
        finished = sent + failed
        rate = failed / finished if finished else 0.0
        if finished >= pause_min and rate > pause_rate:
            paused = await conn.fetchval(
                "UPDATE campaigns SET status = 'paused' WHERE campaign_id = $1 AND status = 'dispatching' "
                "RETURNING true",
                campaign.campaign_id,
            )
            if paused:
                log.warning("campaign %s paused: %.0f%% hard failures", campaign.campaign_id, rate * 100)
                await add_event(
                    conn,
                    CampaignPaused(
                        campaign_id=campaign.campaign_id,
                        sender_email=campaign.sender_email,
                        subject=campaign.subject,
                        total=total,
                        sent=sent,
                        failed=failed,
                        failure_rate=round(rate, 4),
                    ),
                )
                return "paused"
    return None

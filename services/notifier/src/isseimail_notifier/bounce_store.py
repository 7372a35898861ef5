"""Storing a received bounce: the raw message, what it means, and its consequences, in one transaction.

Runs before the listener answers 250: the bounce row, the failure for the sender's report, the
suppression update and the delivery.bounced event (outbox) commit together or not at all. The failed
address is the one the delivery went to (known from deliveries.settled); a bounce for a delivery not
known yet is recorded and reported but suppresses nothing.
"""

from __future__ import annotations

import asyncpg

from isseimail_notifier import delays, failures, suppressions
from isseimail_notifier.bounce_parser import BounceResult
from isseimail_notifier.failures import DigestPolicy
from isseimail_shared.events import DeliveryBounced, DeliveryDelayed
from isseimail_shared.outbox import add_event
from isseimail_shared.verp import VerpTag


async def store_bounce(
    pool: asyncpg.Pool,
    *,
    tag: VerpTag,
    mail_from: str,
    rcpt: str,
    data: bytes,
    result: BounceResult,
    policy: DigestPolicy,
    soft_limit: int,
) -> bool:
    """Record one received message for one VERP tag; True when it was a new bounce of that delivery."""
    async with pool.acquire() as conn, conn.transaction():
        bounce_id = await conn.fetchval(
            "INSERT INTO bounces (mail_from, rcpt, campaign_id, delivery_id, size, raw, is_bounce, recipient, "
            "status, reason, hard, diagnostic, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "RETURNING id",
            mail_from[:500],
            rcpt[:500],
            tag.campaign_id,
            tag.delivery_id,
            len(data),
            data,
            result.is_bounce,
            result.recipient,
            result.status,
            result.reason,
            result.hard,
            result.diagnostic,
            result.note,
        )
        if not result.is_bounce and result.reason != "delayed":
            return False
        delivery = await conn.fetchrow(
            "SELECT recipient, row_number FROM delivered_to($1, $2)",
            tag.campaign_id,
            tag.delivery_id,
        )
        if not result.is_bounce:
            # A delay notice: not a failure, but the sender sees the recipient as 遅延中 until the final DSN.
            if delivery is not None:
                first = await delays.remember(
                    conn,
                    campaign_id=tag.campaign_id,
                    delivery_id=tag.delivery_id,
                    recipient=delivery["recipient"],
                    row_number=delivery["row_number"],
                    status=result.status,
                    diagnostic=result.diagnostic,
                )
                if first:  # the campaign's status shows it as 遅延中 (dispatcher counts it)
                    await add_event(
                        conn,
                        DeliveryDelayed(
                            campaign_id=tag.campaign_id,
                            delivery_id=tag.delivery_id,
                            recipient=delivery["recipient"],
                            status=result.status,
                            diagnostic=result.diagnostic[:1000],
                        ),
                    )
            return False
        if result.recipient is None:
            return False
        # The delivery's own address wins over what the bounce text claims: a bounce sent to a genuine
        # VERP address (every recipient sees theirs) must not suppress someone else.
        recipient = delivery["recipient"] if delivery else result.recipient
        if delivery is not None:
            await conn.execute("UPDATE bounces SET delivered_to = $2 WHERE id = $1", bounce_id, delivery["recipient"])
        fresh = await failures.record(
            conn,
            campaign_id=tag.campaign_id,
            delivery_id=tag.delivery_id,
            source="bounce",
            recipient=recipient,
            row_number=delivery["row_number"] if delivery else None,
            status=result.status,
            smtp_code=None,
            reason=result.reason,
            hard=result.hard,
            diagnostic=result.diagnostic,
        )
        if not fresh:
            return False  # the same delivery bounced before (a retried or duplicated bounce)
        await delays.resolve(conn, tag.campaign_id, tag.delivery_id)
        if delivery is not None:  # the policy (everyone, the sender organisation, nobody) is record_failure's
            await suppressions.record_failure(
                conn,
                address=recipient,
                reason=result.reason,
                hard=result.hard,
                campaign_id=tag.campaign_id,
                soft_limit=soft_limit,
            )
        await add_event(
            conn,
            DeliveryBounced(
                campaign_id=tag.campaign_id,
                delivery_id=tag.delivery_id,
                recipient=recipient,
                status=result.status,
                reason=result.reason,
                hard=result.hard,
                diagnostic=result.diagnostic[:1000],
            ),
        )
        await failures.flush_campaign(conn, tag.campaign_id, policy)
        return True

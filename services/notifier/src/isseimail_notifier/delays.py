"""Delayed deliveries: a delay notice is not a failure, but the sender sees the recipient as 遅延中 until the
final DSN (a failure) or nothing more (it was delivered after all) arrives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from isseimail_shared.db import Conn


@dataclass(frozen=True)
class DelayLine:
    recipient: str
    row_number: int | None
    status: str | None
    diagnostic: str


async def remember(
    conn: Conn,
    *,
    campaign_id: uuid.UUID,
    delivery_id: int,
    recipient: str,
    row_number: int | None,
    status: str | None,
    diagnostic: str,
) -> bool:
    """Record (or count again) a delay notice for one delivery; a delivery already failed stays failed.
    True for the delivery's first notice."""
    first = await conn.fetchval(
        "INSERT INTO delayed_deliveries AS d (campaign_id, delivery_id, recipient, row_number, status, diagnostic) "
        "SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS "
        "(SELECT 1 FROM failures f WHERE f.campaign_id = $1 AND f.delivery_id = $2) "
        "ON CONFLICT (campaign_id, delivery_id) DO UPDATE SET notices = d.notices + 1, last_seen = now(), "
        "status = COALESCE(EXCLUDED.status, d.status), diagnostic = EXCLUDED.diagnostic RETURNING (xmax = 0)",
        campaign_id,
        delivery_id,
        recipient.strip().lower()[:500],
        row_number,
        status,
        diagnostic[:2000],
    )
    return bool(first)


async def resolve(conn: Conn, campaign_id: uuid.UUID, delivery_id: int) -> None:
    """The final DSN came: the delivery is a failure now, no longer 遅延中."""
    await conn.execute(
        "DELETE FROM delayed_deliveries WHERE campaign_id = $1 AND delivery_id = $2", campaign_id, delivery_id
    )


async def pending(conn: Conn, campaign_id: uuid.UUID) -> list[DelayLine]:
    """The campaign's deliveries still 遅延中 (delayed, not failed), in CSV order."""
    rows = await conn.fetch(
        "SELECT recipient, row_number, status, diagnostic FROM delayed_deliveries d WHERE campaign_id = $1 "
        "AND NOT EXISTS (SELECT 1 FROM failures f WHERE f.campaign_id = d.campaign_id "
        "AND f.delivery_id = d.delivery_id) ORDER BY row_number NULLS LAST, recipient",
        campaign_id,
    )
    return [DelayLine(r["recipient"], r["row_number"], r["status"], r["diagnostic"]) for r in rows]

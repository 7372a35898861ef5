"""delivery.bounced and delivery.delayed from the notifier: the recipient was accepted by the next hop, then
bounced, or a delay notice came back (遅延中 until the final bounce)."""

from __future__ import annotations

from isseimail_shared.db import Conn
from isseimail_shared.events import DeliveryBounced, DeliveryDelayed, Envelope


async def delivery_bounced(conn: Conn, envelope: Envelope, event: DeliveryBounced) -> None:
    # Counted once per delivery, however many bounces (or redelivered events) name it; a delayed delivery
    # that bounces leaves the delayed count (the campaign row's counters, read by progress).
    row = await conn.fetchrow(
        "SELECT delayed FROM deliveries WHERE id = $1 AND campaign_id = $2 AND NOT bounced FOR UPDATE",
        event.delivery_id,
        event.campaign_id,
    )
    if row is None:
        return
    await conn.execute("UPDATE deliveries SET bounced = true WHERE id = $1", event.delivery_id)
    await conn.execute(
        "UPDATE campaigns SET bounced = bounced + 1, delayed = delayed - $2 WHERE campaign_id = $1",
        event.campaign_id,
        1 if row["delayed"] else 0,
    )


async def delivery_delayed(conn: Conn, envelope: Envelope, event: DeliveryDelayed) -> None:
    # Counted once, and only while the delivery has not bounced.
    await conn.execute(
        "WITH d AS (UPDATE deliveries SET delayed = true WHERE id = $1 AND campaign_id = $2 "
        "AND NOT delayed AND NOT bounced RETURNING campaign_id) "
        "UPDATE campaigns SET delayed = delayed + 1 WHERE campaign_id = (SELECT campaign_id FROM d)",
        event.delivery_id,
        event.campaign_id,
    )

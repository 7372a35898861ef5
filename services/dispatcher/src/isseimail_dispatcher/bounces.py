"""delivery.bounced from the notifier: the recipient was accepted by the next hop, then bounced."""

from __future__ import annotations

from isseimail_shared.db import Conn
from isseimail_shared.events import DeliveryBounced, Envelope


async def delivery_bounced(conn: Conn, envelope: Envelope, event: DeliveryBounced) -> None:
    # Counted once per delivery, however many bounces (or redelivered events) name it.
    await conn.execute(
        "WITH b AS (UPDATE deliveries SET bounced = true WHERE id = $1 AND campaign_id = $2 AND NOT bounced "
        "RETURNING campaign_id) "
        "UPDATE campaigns SET bounced = bounced + 1 WHERE campaign_id = (SELECT campaign_id FROM b)",
        event.delivery_id,
        event.campaign_id,
    )

"""delivery.bounced from the notifier: the recipient was accepted by the next hop, then bounced."""

from __future__ import annotations

from isseimail_shared.db import Conn
from isseimail_shared.events import DeliveryBounced, Envelope


async def delivery_bounced(conn: Conn, envelope: Envelope, event: DeliveryBounced) -> None:
    await conn.execute(
        "UPDATE deliveries SET bounced = true WHERE id = $1 AND campaign_id = $2", event.delivery_id, event.campaign_id
    )

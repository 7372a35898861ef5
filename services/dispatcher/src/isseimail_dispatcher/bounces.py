"""delivery.bounced and delivery.delayed from the notifier: the recipient was accepted by the next hop, then
bounced, or a delay notice came back (遅延中 until the final bounce)."""

from __future__ import annotations

from isseimail_shared.db import Conn
from isseimail_shared.events import DeliveryBounced, DeliveryDelayed, Envelope


async def delivery_bounced(conn: Conn, envelope: Envelope, event: DeliveryBounced) -> None:
    await conn.execute(
        "UPDATE deliveries SET bounced = true WHERE id = $1 AND campaign_id = $2", event.delivery_id, event.campaign_id
    )


async def delivery_delayed(conn: Conn, envelope: Envelope, event: DeliveryDelayed) -> None:
    await conn.execute(
        "UPDATE deliveries SET delayed = true WHERE id = $1 AND campaign_id = $2", event.delivery_id, event.campaign_id
    )

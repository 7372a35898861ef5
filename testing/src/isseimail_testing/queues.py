"""Put bytes on a queue as they are: what no `WorkMessage` would produce (garbage, an older message form)."""

from __future__ import annotations

import aio_pika

from isseimail_shared.messaging import Broker


async def publish_raw(broker: Broker, queue: str, body: bytes, *, message_id: str | None = None) -> None:
    """Publish `body` to `queue` through the default exchange, with the broker's confirm."""
    channel = await broker.connection.channel(publisher_confirms=True)
    try:
        message = aio_pika.Message(body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key=queue)
    finally:
        await channel.close()


async def queue_depth(broker: Broker, name: str) -> int:
    """Messages ready in the queue (not those delivered and unacked)."""
    channel = await broker.connection.channel()
    try:
        declared = await channel.declare_queue(name, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await channel.close()

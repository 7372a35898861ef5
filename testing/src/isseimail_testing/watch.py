"""Watch the events a service publishes: an exclusive queue bound to some routing keys."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from isseimail_shared.events import DeliveriesSettled, DeliveryFailed, DeliverySucceeded, Envelope, decode
from isseimail_shared.messaging import EVENTS_EXCHANGE, Broker


class EventWatch:
    def __init__(self) -> None:
        self.events: list[tuple[Envelope, Any]] = []

    def of(self, event_type: str) -> list[Any]:
        """Payloads of that type, in arrival order."""
        return [payload for env, payload in self.events if env.type == event_type]

    async def wait_for(self, event_type: str, count: int = 1, timeout: float = 30.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.of(event_type)) < count:  # noqa: ASYNC110 - polling a list filled by a consumer
                await asyncio.sleep(0.05)
        return self.of(event_type)

    def delivered(self) -> list[DeliverySucceeded]:
        """The delivered recipients of every deliveries.settled, one record each (smtp_code not carried: 250)."""
        settled: list[DeliveriesSettled] = self.of(DeliveriesSettled.event_type)
        return [
            DeliverySucceeded(campaign_id=e.campaign_id, delivery_id=i, recipient=to, smtp_code=250, row_number=row)
            for e in settled
            for i, row, to in zip(e.delivered_ids, e.delivered_rows, e.delivered_to, strict=True)
        ]

    def failed(self) -> list[DeliveryFailed]:
        """The failures of every deliveries.settled, one record each, in arrival order."""
        settled: list[DeliveriesSettled] = self.of(DeliveriesSettled.event_type)
        return [
            DeliveryFailed(campaign_id=e.campaign_id, sender_email=e.sender_email, subject=e.subject, **f.model_dump())
            for e in settled
            for f in e.failed
        ]

    async def wait_for_failed(self, count: int, timeout: float = 30.0) -> list[DeliveryFailed]:
        async with asyncio.timeout(timeout):
            while len(self.failed()) < count:  # noqa: ASYNC110 - polling a list filled by a consumer
                await asyncio.sleep(0.05)
        return self.failed()


@contextlib.asynccontextmanager
async def watching(broker: Broker, keys: Sequence[str]) -> AsyncIterator[EventWatch]:
    watch = EventWatch()
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    for key in keys:
        await queue.bind(EVENTS_EXCHANGE, routing_key=key)

    async def on_message(message: AbstractIncomingMessage) -> None:
        async with message.process():
            watch.events.append(decode(message.body))

    await queue.consume(on_message)
    try:
        yield watch
    finally:
        await channel.close()

"""Watch the events a service publishes: an exclusive queue bound to some routing keys."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from isseimail_shared.events import Envelope, decode
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

"""RabbitMQ with aio-pika: topology, confirmed publishing, and consumers that ack by hand.

Topology (declared idempotently by whoever needs it):
- `isseimail.events`: durable topic exchange, routing key = event type;
- `isseimail.dlx`: direct exchange for dead letters; every queue `q` dead-letters into `q.dlq`;
- consumer and work queues are quorum queues with `x-delivery-limit`, so a message that keeps failing
  ends in its DLQ after a bounded number of redeliveries, with no bookkeeping of our own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from isseimail_shared.events import Envelope, encode
from isseimail_shared.metrics import EVENTS_PUBLISHED

log = logging.getLogger(__name__)

EVENTS_EXCHANGE = "isseimail.events"
DEAD_LETTER_EXCHANGE = "isseimail.dlx"

MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


def queue_arguments(name: str, delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": name,
        "x-delivery-limit": delivery_limit,
    }


class Broker:
    """One robust connection per process; a confirm channel for publishing, one channel per consumer."""

    def __init__(self, url: str, *, name: str, delivery_limit: int = 5) -> None:
        self._url = url
        self._name = name
        self.delivery_limit = delivery_limit
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._events: AbstractExchange | None = None

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("broker not connected")
        return self._connection

    async def connect(self, timeout: float = 10.0) -> None:
        self._connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": self._name}, timeout=timeout
        )
        self._channel = await self._connection.channel(publisher_confirms=True)
        self._events = await declare_topology(self._channel)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def is_connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def publish_event(self, envelope: Envelope, *, body: bytes | None = None) -> None:
        """Publish and wait for the broker's confirm; raises when the broker is unreachable."""
        await self.publish_encoded(envelope.type, envelope.event_id, body if body is not None else encode(envelope))

    async def publish_encoded(self, event_type: str, event_id: uuid.UUID, body: bytes) -> None:
        """Publish an envelope already encoded (the outbox's rows), with confirm, without parsing it again."""
        if self._events is None:
            raise RuntimeError("broker not connected")
        await self._events.publish(
            _message(body, str(event_id), event_type),
            routing_key=event_type,
            mandatory=False,  # an event nobody subscribes to yet is normal, not an error
        )
        EVENTS_PUBLISHED.labels(self._name, event_type).inc()

    async def publish_work(self, queue: str, body: bytes, *, message_id: str, kind: str = "work") -> None:
        """Publish to a work queue through the default exchange, with confirm."""
        if self._channel is None:
            raise RuntimeError("broker not connected")
        await self._channel.default_exchange.publish(_message(body, message_id, kind), routing_key=queue)

    async def declare_queue(self, channel: AbstractChannel, name: str, bindings: Iterable[str] = ()) -> AbstractQueue:
        return await declare_queue(channel, name, bindings, self.delivery_limit)

    async def consumer(
        self, queue: str, handler: MessageHandler, *, bindings: Iterable[str] = (), prefetch: int = 20
    ) -> Consumer:
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        declared = await self.declare_queue(channel, queue, bindings)
        return Consumer(channel, declared, handler)


def _message(body: bytes, message_id: str, kind: str) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        message_id=message_id,
        type=kind,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def declare_topology(channel: AbstractChannel) -> AbstractExchange:
    events = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    return events


async def declare_queue(
    channel: AbstractChannel, name: str, bindings: Iterable[str], delivery_limit: int
) -> AbstractQueue:
    """The queue, its DLQ and its bindings to the events exchange; safe to repeat."""
    await declare_topology(channel)
    dlq = await channel.declare_queue(f"{name}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
    await dlq.bind(DEAD_LETTER_EXCHANGE, routing_key=name)
    queue = await channel.declare_queue(name, durable=True, arguments=queue_arguments(name, delivery_limit))
    for key in bindings:
        await queue.bind(EVENTS_EXCHANGE, routing_key=key)
    return queue


class Consumer:
    """Runs a handler per message; `stop()` cancels consumption and waits for in-flight handlers."""

    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, handler: MessageHandler) -> None:
        self._channel = channel
        self.queue = queue
        self._handler = handler
        self._tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._tag = await self.queue.consume(self._on_message, no_ack=False)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            await self._handler(message)
        finally:
            self._in_flight.discard(task)

    async def stop(self, grace: float = 20.0) -> None:
        if self._tag is not None and not self._channel.is_closed:
            try:
                await self.queue.cancel(self._tag)
            except Exception:  # a broken channel has nothing left to cancel
                log.debug("cancel failed for %s", self.queue.name, exc_info=True)
            self._tag = None
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=grace)
            if pending:
                log.warning("%d handlers still running on %s after %.0fs", len(pending), self.queue.name, grace)
        if not self._channel.is_closed:
            await self._channel.close()


def delivery_count(message: AbstractIncomingMessage) -> int:
    """How many times a quorum queue has handed this message out before (0 on the first delivery)."""
    value = (message.headers or {}).get("x-delivery-count", 0)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0

"""RabbitMQ with aio-pika: topology, confirmed publishing, and consumers that ack by hand.

Topology (declared idempotently by whoever needs it):
- `isseimail.events`: durable topic exchange, routing key = event type;
- `isseimail.dlx`: direct exchange for dead letters; every queue `q` dead-letters into `q.dlq`;
- consumer and work queues are quorum queues with a delivery limit, so a message that keeps failing
  ends in its DLQ after a bounded number of redeliveries, with no bookkeeping of our own. The limit is a
  policy (queue_policy.py) when the management API is configured, else the `x-delivery-limit` argument.

Who declares: a queue is declared by the service that owns it (its consumer, or for the batch work queue
the dispatcher that publishes to it) before anything consumes; a process that only consumes a queue owned
by another (a dispatcher worker) waits for it with a bounded retry (`Broker.consumer(declare=False)`).
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
from isseimail_shared.work import WorkMessage

log = logging.getLogger(__name__)

EVENTS_EXCHANGE = "isseimail.events"
DEAD_LETTER_EXCHANGE = "isseimail.dlx"

MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


QUEUE_WAIT_SECONDS = 60.0


class QueueMissing(RuntimeError):
    """The queue another service owns was not declared within the wait."""


def queue_arguments(name: str, delivery_limit: int | None) -> dict[str, Any]:
    """The quorum queue's arguments; delivery_limit None when a policy sets it (queue_policy.py)."""
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": name,
    }
    if delivery_limit is not None:
        arguments["x-delivery-limit"] = delivery_limit
    return arguments


class Broker:
    """One robust connection per process; a confirm channel for publishing, one channel per consumer.

    delivery_limit None: the queues are declared without `x-delivery-limit` (a policy sets it)."""

    def __init__(self, url: str, *, name: str, delivery_limit: int | None = 5) -> None:
        self._url = url
        self._name = name
        self.delivery_limit = delivery_limit
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._unconfirmed: AbstractChannel | None = None
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
            self._unconfirmed = None

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

    async def publish_work(self, message: WorkMessage) -> None:
        """Publish to the message's work queue through the default exchange; waits for the broker's confirm
        unless the message's class says a lost one is found again by other means (`WorkMessage.confirm`)."""
        channel = self._channel if message.confirm else await self._unconfirmed_channel()
        if channel is None:
            raise RuntimeError("broker not connected")
        await channel.default_exchange.publish(
            _message(message.encode(), message.message_id(), message.kind), routing_key=message.queue
        )

    async def _unconfirmed_channel(self) -> AbstractChannel:
        """A channel without publisher confirms, opened on first use (and again after it closed)."""
        if self._unconfirmed is None or self._unconfirmed.is_closed:
            self._unconfirmed = await self.connection.channel(publisher_confirms=False)
        return self._unconfirmed

    async def declare_queue(self, channel: AbstractChannel, name: str, bindings: Iterable[str] = ()) -> AbstractQueue:
        return await declare_queue(channel, name, bindings, self.delivery_limit)

    async def declare_owned(self, name: str, bindings: Iterable[str] = ()) -> None:
        """Declare a queue this service owns (and its DLQ), on a channel of its own, before anything consumes."""
        channel = await self.connection.channel()
        try:
            await self.declare_queue(channel, name, bindings)
        finally:
            if not channel.is_closed:
                await channel.close()

    async def wait_for_queue(self, name: str, timeout: float = QUEUE_WAIT_SECONDS) -> None:
        """Return once the queue exists (passive declare), retrying with backoff: its owner declares it, and a
        quorum queue being created answers NOT_FOUND or an internal error for a moment. QueueMissing at the end."""
        deadline = asyncio.get_running_loop().time() + timeout
        delay = 0.2
        while True:
            channel = await self.connection.channel()
            try:
                await channel.declare_queue(name, passive=True)
                return
            except (aio_pika.exceptions.ChannelClosed, aio_pika.exceptions.AMQPError) as exc:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise QueueMissing(f"queue {name} was not declared within {timeout:g} s") from exc
                log.info("queue %s not there yet (%s); waiting %.1f s", name, exc.__class__.__name__, delay)
            finally:
                if not channel.is_closed:
                    await channel.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)

    async def consumer(
        self,
        queue: str,
        handler: MessageHandler,
        *,
        bindings: Iterable[str] = (),
        prefetch: int = 20,
        declare: bool = True,
        wait: float = QUEUE_WAIT_SECONDS,
    ) -> Consumer:
        """A consumer of the queue; declare=False for a queue another service owns: wait for it instead."""
        if not declare:
            await self.wait_for_queue(queue, wait)
        channel = await self.connection.channel()
        if declare:
            declared = await self.declare_queue(channel, queue, bindings)
        else:
            declared = await channel.declare_queue(queue, passive=True)
        await channel.set_qos(prefetch_count=prefetch)  # after declaring: a refused re-declare reopens the channel
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
    channel: AbstractChannel, name: str, bindings: Iterable[str], delivery_limit: int | None
) -> AbstractQueue:
    """The queue, its DLQ and its bindings to the events exchange; safe to repeat.

    A queue that exists with another `x-delivery-limit` argument (or with one, now that a policy sets the
    limit) is used as it is, with a warning: RabbitMQ refuses to re-declare it, and the lower of its argument
    and the policy applies until it is deleted (drained first) and declared again."""
    await declare_topology(channel)
    dlq = await channel.declare_queue(f"{name}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
    await dlq.bind(DEAD_LETTER_EXCHANGE, routing_key=name)
    try:
        queue = await channel.declare_queue(name, durable=True, arguments=queue_arguments(name, delivery_limit))
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        if "x-delivery-limit" not in str(exc):
            raise
        log.warning("queue %s keeps the delivery limit it was declared with: %s", name, exc)
        await channel.reopen()
        queue = await channel.declare_queue(name, passive=True)
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

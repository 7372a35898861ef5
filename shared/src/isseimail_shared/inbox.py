"""Idempotent event consumption: decode, skip what was processed, run the handler in one transaction.

The handler's database writes and the processed_events row commit together, then the message is
acked. A duplicate delivery finds the row and is acked without running the handler again. A message
that is not a valid event is rejected straight to the dead-letter queue; a handler that fails is
requeued, and the quorum queue's delivery limit moves it to the DLQ after a bounded number of tries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from isseimail_shared.db import Conn
from isseimail_shared.events import Envelope, Event, InvalidEvent, decode
from isseimail_shared.messaging import MessageHandler, delivery_count
from isseimail_shared.metrics import EVENTS_CONSUMED

log = logging.getLogger(__name__)

EventHandler = Callable[[Conn, Envelope, Any], Awaitable[None]]


def event_handler(
    pool: asyncpg.Pool,
    *,
    service: str,
    queue: str,
    handlers: Mapping[type[Event], EventHandler],
) -> MessageHandler:
    """Build the message callback for a consumer queue from a map of event class -> handler."""
    by_type = {cls.event_type: fn for cls, fn in handlers.items()}

    async def on_message(message: AbstractIncomingMessage) -> None:
        try:
            envelope, payload = decode(message.body)
            handler = by_type.get(envelope.type)
            if handler is None:
                raise InvalidEvent(f"queue {queue} has no handler for {envelope.type}")
        except InvalidEvent as exc:
            log.error("rejecting message %s to the DLQ: %s", message.message_id, exc, extra={"queue": queue})
            EVENTS_CONSUMED.labels(service, queue, "invalid").inc()
            await message.reject(requeue=False)
            return
        try:
            async with pool.acquire() as conn, conn.transaction():
                fresh = await conn.fetchval(
                    "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
                    "ON CONFLICT DO NOTHING RETURNING true",
                    queue,
                    envelope.event_id,
                )
                if fresh:
                    await handler(conn, envelope, payload)
        except Exception:
            tries = delivery_count(message)
            log.exception(
                "handler for %s failed (delivery %d); requeueing",
                envelope.type,
                tries + 1,
                extra={"event_id": str(envelope.event_id), "queue": queue},
            )
            EVENTS_CONSUMED.labels(service, queue, "failed").inc()
            await asyncio.sleep(min(0.2 * 2**tries, 5.0))  # no hot loop while a dependency is down
            await message.nack(requeue=True)
            return
        EVENTS_CONSUMED.labels(service, queue, "processed" if fresh else "duplicate").inc()
        await message.ack()

    return on_message

"""Idempotent event consumption: decode, skip what was processed, run the handler in one transaction.

The handler's database writes and the processed_events row commit together, then the message is
acked. A duplicate delivery finds the row and is acked without running the handler again. Rejecting what
is not a valid event, requeueing a failed handler with backoff, and counting outcomes are the work-queue
skeleton's (`work_handler.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from isseimail_shared.db import Conn
from isseimail_shared.events import Envelope, Event, InvalidEvent, decode
from isseimail_shared.messaging import MessageHandler
from isseimail_shared.metrics import EVENTS_CONSUMED
from isseimail_shared.work_handler import Handled, outcome_counters, work_handler

EventHandler = Callable[[Conn, Envelope, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Delivery:
    envelope: Envelope
    payload: Event
    handler: EventHandler

    def describe(self) -> str:
        return f"handler for {self.envelope.type} event {self.envelope.event_id}"


def event_handler(
    pool: asyncpg.Pool,
    *,
    service: str,
    queue: str,
    handlers: Mapping[type[Event], EventHandler],
) -> MessageHandler:
    """Build the message callback for a consumer queue from a map of event class -> handler."""
    by_type = {cls.event_type: fn for cls, fn in handlers.items()}

    def decode_delivery(body: bytes) -> _Delivery:
        envelope, payload = decode(body)
        handler = by_type.get(envelope.type)
        if handler is None:
            raise InvalidEvent(f"queue {queue} has no handler for {envelope.type}")
        return _Delivery(envelope, payload, handler)

    async def process(delivery: _Delivery) -> Handled:
        async with pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING true",
                queue,
                delivery.envelope.event_id,
            )
            if fresh:
                await delivery.handler(conn, delivery.envelope, delivery.payload)
        return "processed" if fresh else "duplicate"

    return work_handler(
        decode_delivery, process, queue=queue, counted=outcome_counters(EVENTS_CONSUMED, service, queue)
    )

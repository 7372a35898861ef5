"""The one consumer skeleton under every queue: decode, process, then ack, dead-letter or requeue.

- A body that `decode` refuses (a ValueError: `InvalidMessage`, `InvalidEvent`) is rejected straight to the
  dead-letter queue: no retry can fix it.
- A `process` that raises is requeued after a backoff that grows with the broker's delivery count and is
  bounded; the quorum queue's delivery limit then moves the message to the DLQ, so nothing loops.
- Otherwise the message is acked; `process` says whether it did the work or found it already done.

Each outcome is counted (processed, duplicate, invalid, failed). Settling a message whose channel is gone (a
broker outage while it was processed) cannot succeed and needs nothing: the broker hands it out again.
Users: the event inbox (`inbox.py`), the list validator's domain checks, the dispatcher's batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol, TypeVar

from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Counter

from isseimail_shared.messaging import MessageHandler, delivery_count
from isseimail_shared.metrics import WORK_MESSAGES

log = logging.getLogger(__name__)

Handled = Literal["processed", "duplicate"]
OUTCOMES = ("processed", "duplicate", "invalid", "failed")
MAX_RETRY_DELAY = 5.0


class Describable(Protocol):
    def describe(self) -> str:
        """How a log line names the message."""
        ...


W = TypeVar("W", bound=Describable)


def retry_delay(tries: int) -> float:
    """Seconds to wait before requeueing a message already delivered `tries` times: no hot loop while a
    dependency is down, never long enough to hold up a shutdown."""
    return min(0.2 * 2.0 ** min(tries, 16), MAX_RETRY_DELAY)


def outcome_counters(counter: Counter, *labels: str) -> dict[str, Counter]:
    """The counter's children for each outcome, made once (and shown at 0) rather than looked up per message."""
    return {outcome: counter.labels(*labels, outcome) for outcome in OUTCOMES}


def work_handler(
    decode: Callable[[bytes], W],
    process: Callable[[W], Awaitable[Handled]],
    *,
    queue: str,
    counted: Mapping[str, Counter] | None = None,
) -> MessageHandler:
    """The message callback of a queue. `counted` defaults to isseimail_work_messages_total{queue}."""
    counts = counted if counted is not None else outcome_counters(WORK_MESSAGES, queue)

    async def on_message(message: AbstractIncomingMessage) -> None:
        try:
            work = decode(message.body)
        except ValueError as exc:
            log.error("rejecting message %s to the DLQ: %s", message.message_id, exc, extra={"queue": queue})
            counts["invalid"].inc()
            await _settle(message.reject(requeue=False), message, queue)
            return
        try:
            outcome = await process(work)
        except Exception:
            tries = delivery_count(message)
            log.exception("%s failed (delivery %d); requeueing", work.describe(), tries + 1, extra={"queue": queue})
            counts["failed"].inc()
            await asyncio.sleep(retry_delay(tries))
            await _settle(message.nack(requeue=True), message, queue)
            return
        counts[outcome].inc()
        await _settle(message.ack(), message, queue)

    return on_message


async def _settle(step: Awaitable[None], message: AbstractIncomingMessage, queue: str) -> None:
    try:
        await step
    except Exception as exc:
        log.warning(
            "could not settle message %s (%s); the broker hands it out again",
            message.message_id,
            exc.__class__.__name__,
            extra={"queue": queue},
        )

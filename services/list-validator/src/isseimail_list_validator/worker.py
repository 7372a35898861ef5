"""The domain-check work queue: one task per (list, distinct domain), shared by every replica.

Handlers resolve their domain and hand the result to a `ResultWriter`, which gathers results for a
few milliseconds and commits them in one transaction; only then are the messages acked. A worker that
dies before the commit leaves its messages unacked, and the broker hands them to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from isseimail_list_validator import lists
from isseimail_list_validator.domain_check import DomainChecker, DomainResult
from isseimail_list_validator.lists import DomainOutcome
from isseimail_shared.messaging import Broker, delivery_count

log = logging.getLogger(__name__)

DOMAIN_QUEUE = "list-validator.domains"

DOMAIN_TASKS = Counter("isseimail_list_validator_domain_tasks_total", "Domain checks handled, by outcome.", ["outcome"])
LISTS_FINISHED = Counter("isseimail_list_validator_lists_finished_total", "Lists whose every domain was answered.")

Prober = Callable[[uuid.UUID, str, DomainResult], Awaitable[Sequence[tuple[int, str]]]]


class DomainTask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    list_id: uuid.UUID
    domain: str = Field(min_length=1, max_length=255)


class TaskPublisher:
    """Publishes one message per domain on a channel of its own without publisher confirms.

    Waiting for 5,000 confirms from a quorum queue took seconds of the upload; a lost task instead is
    found by the stale-list sweeper (`redispatch_stale`), which republishes the unanswered domains.
    """

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._channel: AbstractChannel | None = None

    async def publish(self, list_id: uuid.UUID, domains: Sequence[str]) -> None:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._broker.connection.channel(publisher_confirms=False)
        exchange = self._channel.default_exchange
        for domain in domains:
            body = DomainTask(list_id=list_id, domain=domain).model_dump_json().encode()
            message = aio_pika.Message(
                body,
                message_id=f"{list_id}:{domain}",
                type="domain-check",
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await exchange.publish(message, routing_key=DOMAIN_QUEUE)

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()


class ResultWriter:
    def __init__(self, pool: asyncpg.Pool, flush_seconds: float, max_batch: int = 1000) -> None:
        self._pool = pool
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[DomainOutcome, asyncio.Future[None]]] = asyncio.Queue()

    async def submit(self, outcome: DomainOutcome) -> None:
        """Returns once the outcome is committed; raises if the write failed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((outcome, future))
        await future

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_seconds):
                    while len(batch) < self._max_batch:
                        batch.append(await self._queue.get())
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                finished = await lists.record_outcomes(self._pool, [o for o, _ in batch])
            except Exception as exc:
                log.exception("writing %d domain results failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            LISTS_FINISHED.inc(len(finished))
            for list_id in finished:
                log.info("list %s validated", list_id)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)


def domain_handler(
    checker: DomainChecker, writer: ResultWriter, prober: Prober | None = None
) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
    async def on_message(message: AbstractIncomingMessage) -> None:
        try:
            task = DomainTask.model_validate_json(message.body)
        except ValidationError:
            log.error("rejecting malformed domain task %s to the DLQ", message.message_id)
            DOMAIN_TASKS.labels("invalid").inc()
            await message.reject(requeue=False)
            return
        try:
            result = await checker.check(task.domain)
            probes: Sequence[tuple[int, str]] = ()
            if prober is not None and result.code == "ok":
                probes = await prober(task.list_id, task.domain, result)
            await writer.submit(DomainOutcome(task.list_id, task.domain, result.code, result.detail, probes))
        except Exception:
            tries = delivery_count(message)
            log.exception("domain check of %s failed (delivery %d); requeueing", task.domain, tries + 1)
            DOMAIN_TASKS.labels("failed").inc()
            await asyncio.sleep(min(0.2 * 2**tries, 5.0))
            await message.nack(requeue=True)
            return
        DOMAIN_TASKS.labels(result.code).inc()
        await message.ack()

    return on_message


async def redispatch_stale(pool: asyncpg.Pool, publisher: TaskPublisher, older_than: float) -> int:
    """Republish the unanswered domains of lists stuck in 'validating' (a publish lost to a crash)."""
    count = 0
    for list_id, domains in await lists.stale_lists(pool, older_than):
        log.warning("list %s still validating; republishing %d domain checks", list_id, len(domains))
        await publisher.publish(list_id, domains)
        count += len(domains)
    return count

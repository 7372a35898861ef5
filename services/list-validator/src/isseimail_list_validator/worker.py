"""The domain-check work queue: tasks of (list, some of its distinct domains), shared by every replica.

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
from typing import Annotated, Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from isseimail_list_validator import lists
from isseimail_list_validator.domain_check import DomainChecker, DomainResult
from isseimail_list_validator.lists import DomainOutcome
from isseimail_shared.messaging import Broker, delivery_count

log = logging.getLogger(__name__)

DOMAIN_QUEUE = "list-validator.domains"

DOMAIN_TASKS = Counter("isseimail_list_validator_domain_tasks_total", "Domain checks handled, by outcome.", ["outcome"])
LISTS_FINISHED = Counter("isseimail_list_validator_lists_finished_total", "Lists whose every domain was answered.")

Prober = Callable[[uuid.UUID, str, DomainResult], Awaitable[Sequence[tuple[int, str]]]]


MAX_TASK_DOMAINS = 500  # what a message may hold
TASK_DOMAINS = 50  # what a message holds when published here


class DomainTask(BaseModel):
    """One work message: some of a list's distinct domains (one message per domain cost ~0.3 ms each to
    publish, seconds for a large list). A message of the older form `{"list_id", "domain"}` is still read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    list_id: uuid.UUID
    domains: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        min_length=1, max_length=MAX_TASK_DOMAINS
    )

    @model_validator(mode="before")
    @classmethod
    def _single_domain(cls, data: Any) -> Any:
        if isinstance(data, dict) and "domain" in data and "domains" not in data:
            data = {**data, "domains": [data["domain"]]}
            del data["domain"]
        return data


def task_size(domains: int, max_batch: int) -> int:
    """Domains per message: up to `max_batch`, but a list is cut into at least ~32 messages so that
    every replica gets a share of a small list."""
    return max(1, min(max_batch, -(-domains // 32)))


class TaskPublisher:
    """Publishes a list's domains in a few messages on a channel of its own without publisher confirms.

    Waiting for confirms from a quorum queue took seconds of the upload; a lost task instead is found
    by the stale-list sweeper (`redispatch_stale`), which republishes the unanswered domains.
    """

    def __init__(self, broker: Broker, max_batch: int = TASK_DOMAINS) -> None:
        self._broker = broker
        self._max_batch = min(max_batch, MAX_TASK_DOMAINS)
        self._channel: AbstractChannel | None = None

    async def publish(self, list_id: uuid.UUID, domains: Sequence[str]) -> None:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._broker.connection.channel(publisher_confirms=False)
        exchange = self._channel.default_exchange
        size = task_size(len(domains), self._max_batch)
        for start in range(0, len(domains), size):
            chunk = list(domains[start : start + size])
            body = DomainTask(list_id=list_id, domains=chunk).model_dump_json().encode()
            message = aio_pika.Message(
                body,
                message_id=f"{list_id}:{chunk[0]}:{len(chunk)}",
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
    checker: DomainChecker,
    writer: ResultWriter,
    prober: Prober | None = None,
    concurrency: int = 200,
) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
    """Checks a message's domains at once (at most `concurrency` per worker across its messages); each
    result is written as soon as it is known, the message acked when all of them are committed."""
    slots = asyncio.Semaphore(concurrency)

    async def check_one(list_id: uuid.UUID, domain: str) -> str:
        async with slots:
            result = await checker.check(domain)
            probes: Sequence[tuple[int, str]] = ()
            if prober is not None and result.code == "ok":
                probes = await prober(list_id, domain, result)
        await writer.submit(DomainOutcome(list_id, domain, result.code, result.detail, probes))
        return result.code

    async def on_message(message: AbstractIncomingMessage) -> None:
        try:
            task = DomainTask.model_validate_json(message.body)
        except ValidationError:
            log.error("rejecting malformed domain task %s to the DLQ", message.message_id)
            DOMAIN_TASKS.labels("invalid").inc()
            await message.reject(requeue=False)
            return
        results = await asyncio.gather(*(check_one(task.list_id, d) for d in task.domains), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for code in results:
            if isinstance(code, str):
                DOMAIN_TASKS.labels(code).inc()
        if failed:
            # Results already committed stay (recording is idempotent); the message comes back whole.
            tries = delivery_count(message)
            log.error(
                "%d of %d domain checks of list %s failed (delivery %d); requeueing",
                len(failed),
                len(task.domains),
                task.list_id,
                tries + 1,
                exc_info=failed[0],
            )
            DOMAIN_TASKS.labels("failed").inc(len(failed))
            await asyncio.sleep(min(0.2 * 2**tries, 5.0))
            await message.nack(requeue=True)
            return
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

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

import asyncpg
from prometheus_client import Counter

from isseimail_list_validator import lists
from isseimail_list_validator.domain_check import DomainChecker, DomainResult
from isseimail_list_validator.lists import DomainOutcome
from isseimail_list_validator.work_messages import DomainTask, TaskPublisher
from isseimail_shared.messaging import MessageHandler
from isseimail_shared.work_handler import Handled, work_handler

log = logging.getLogger(__name__)

DOMAIN_TASKS = Counter(
    "isseimail_list_validator_domain_tasks_total",
    "Domain checks handled, by outcome (the check's code, or failed when it raised).",
    ["outcome"],
)
LISTS_FINISHED = Counter("isseimail_list_validator_lists_finished_total", "Lists whose every domain was answered.")

Prober = Callable[[uuid.UUID, str, DomainResult], Awaitable[Sequence[tuple[int, str]]]]


class DomainChecksFailed(Exception):
    """Some of a message's domain checks raised: the message is requeued whole."""


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
) -> MessageHandler:
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

    async def process(task: DomainTask) -> Handled:
        results = await asyncio.gather(*(check_one(task.list_id, d) for d in task.domains), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for code in results:
            if isinstance(code, str):
                DOMAIN_TASKS.labels(code).inc()
        if failed:
            # Results already committed stay (recording is idempotent); the message comes back whole.
            DOMAIN_TASKS.labels("failed").inc(len(failed))
            raise DomainChecksFailed(
                f"{len(failed)} of {len(task.domains)} domain checks of list {task.list_id} failed"
            ) from failed[0]
        return "processed"

    return work_handler(DomainTask.decode, process, queue=DomainTask.queue)


async def redispatch_stale(pool: asyncpg.Pool, publisher: TaskPublisher, older_than: float) -> int:
    """Republish the unanswered domains of lists stuck in 'validating' (a publish lost to a crash)."""
    count = 0
    for list_id, domains in await lists.stale_lists(pool, older_than):
        log.warning("list %s still validating; republishing %d domain checks", list_id, len(domains))
        await publisher.publish(list_id, domains)
        count += len(domains)
    return count

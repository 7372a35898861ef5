"""The domain-check work queue's contract: the message (some of a list's distinct domains) and how a list's
domains are cut into messages and published. The routes and the sweeper publish it, the worker consumes it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

from pydantic import Field, model_validator

from isseimail_shared.messaging import Broker
from isseimail_shared.work import WorkMessage

MAX_TASK_DOMAINS = 500  # what a message may hold
TASK_DOMAINS = 50  # what a message holds when published here


class DomainTask(WorkMessage):
    """One work message: some of a list's distinct domains (one message per domain cost ~0.3 ms each to
    publish, seconds for a large list). A message of the older form `{"list_id", "domain"}` is still read."""

    queue: ClassVar[str] = "list-validator.domains"
    kind: ClassVar[str] = "domain-check"
    # Waiting for confirms from a quorum queue took seconds of the upload; a lost task instead is found by
    # the stale-list sweeper (`worker.redispatch_stale`), which republishes the unanswered domains.
    confirm: ClassVar[bool] = False

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

    def message_id(self) -> str:
        return f"{self.list_id}:{self.domains[0]}:{len(self.domains)}"


DOMAIN_QUEUE = DomainTask.queue


def task_size(domains: int, max_batch: int) -> int:
    """Domains per message: up to `max_batch`, but a list is cut into at least ~32 messages so that
    every replica gets a share of a small list."""
    return max(1, min(max_batch, -(-domains // 32)))


class TaskPublisher:
    """Publishes a list's domains in a few messages."""

    def __init__(self, broker: Broker, max_batch: int = TASK_DOMAINS) -> None:
        self._broker = broker
        self._max_batch = min(max_batch, MAX_TASK_DOMAINS)

    async def publish(self, list_id: uuid.UUID, domains: Sequence[str]) -> None:
        size = task_size(len(domains), self._max_batch)
        for start in range(0, len(domains), size):
            await self._broker.publish_work(DomainTask(list_id=list_id, domains=list(domains[start : start + size])))

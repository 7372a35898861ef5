"""The batch work queue's contract: `{"batch_id": n}`, published by the scheduler, consumed by the SMTP workers."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StrictInt

from isseimail_shared.work import WorkMessage


class BatchMessage(WorkMessage):
    """One batch of deliveries to send; everything else about it is in the batches table."""

    queue: ClassVar[str] = "dispatcher.batches"
    kind: ClassVar[str] = "batch"
    max_bytes: ClassVar[int] = 1024

    # Strict: a string, float or boolean id is refused, not coerced.
    batch_id: Annotated[StrictInt, Field(gt=0, lt=2**63)]

    def message_id(self) -> str:
        return f"batch-{self.batch_id}"


BATCH_QUEUE = BatchMessage.queue

"""The contract of a work-queue message: a pydantic model that names its queue and encodes itself.

A work queue (the list validator's domain checks, the dispatcher's batches) carries one kind of message.
Its class says where it goes (`queue`), what the AMQP `type` property says (`kind`), whether the publisher
waits for the broker's confirm (`confirm`), and the largest body a consumer reads (`max_bytes`). Encoding
and decoding live here only: `Broker.publish_work(message)` sends `encode()`, the consumer's `work_handler`
calls `decode()`, which raises `InvalidMessage` for anything that belongs in the dead-letter queue.

The classes live in a neutral module of the service that owns the queue (`work_messages.py`), so that its
routes, scheduler and worker all import the contract rather than each other.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError


class InvalidMessage(ValueError):
    """A body that is not a valid message of its queue: no retry can fix it, it goes to the DLQ."""


class WorkMessage(BaseModel):
    """Base of every work message. Subclasses set `queue` and define `message_id()`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: ClassVar[str]
    kind: ClassVar[str] = "work"
    # False only where a message lost between publish and queue is found again by other means (a sweeper):
    # waiting for a quorum queue's confirms costs the publisher milliseconds per message.
    confirm: ClassVar[bool] = True
    max_bytes: ClassVar[int] = 1 << 20

    def message_id(self) -> str:
        """The AMQP message id, also how logs name the message."""
        raise NotImplementedError

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, body: bytes) -> Self:
        """The message in `body`; InvalidMessage (a ValueError) with a reason fit for a log line otherwise."""
        if len(body) > cls.max_bytes:
            raise InvalidMessage(f"{cls.kind} message of {len(body)} bytes exceeds {cls.max_bytes}")
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidMessage(f"invalid {cls.kind} message at {first['loc']}: {first['msg']}") from None

    def describe(self) -> str:
        return f"{self.kind} message {self.message_id()}"

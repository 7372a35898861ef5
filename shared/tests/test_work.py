"""The work-queue pattern against the real RabbitMQ: `WorkMessage`, `Broker.publish_work`, `work_handler`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from aio_pika.abc import AbstractIncomingMessage
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter

from isseimail_shared.messaging import Broker, delivery_count
from isseimail_shared.work import InvalidMessage, WorkMessage
from isseimail_shared.work_handler import Handled, outcome_counters, retry_delay, work_handler
from isseimail_testing.queues import publish_raw, queue_depth

QUEUE = "test.work"


class Job(WorkMessage):
    queue: ClassVar[str] = QUEUE
    kind: ClassVar[str] = "job"
    max_bytes: ClassVar[int] = 256

    job_id: int
    note: str = ""

    def message_id(self) -> str:
        return f"job-{self.job_id}"


class FastJob(Job):
    confirm: ClassVar[bool] = False


class Recorder:
    """A `process` that fails its first `failures` deliveries of each job, noting when and how often it ran."""

    def __init__(self, failures: int = 0, outcome: Handled = "processed") -> None:
        self.failures = failures
        self.outcome = outcome
        self.calls: list[tuple[int, float]] = []
        self.done: asyncio.Queue[Job] = asyncio.Queue()

    async def __call__(self, job: Job) -> Handled:
        self.calls.append((job.job_id, time.monotonic()))
        if sum(1 for j, _ in self.calls if j == job.job_id) <= self.failures:
            raise RuntimeError("downstream broken")
        await self.done.put(job)
        return self.outcome


@pytest.fixture
async def work_broker(amqp_url: str) -> AsyncIterator[Broker]:
    broker = Broker(amqp_url, name="test-work", delivery_limit=3)
    await broker.connect()
    await broker.declare_owned(QUEUE)
    yield broker
    await broker.close()


@pytest.fixture
def counter() -> Counter:
    return Counter("t_work", "Outcomes.", ["outcome"], registry=CollectorRegistry())


def count(counter: Counter, outcome: str) -> float:
    return float(counter.labels(outcome)._value.get())


async def wait_depth(broker: Broker, name: str, expected: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while await queue_depth(broker, name) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} did not reach {expected} messages")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def consuming(broker: Broker, recorder: Recorder, counter: Counter) -> AsyncIterator[None]:
    handler = work_handler(Job.decode, recorder, queue=QUEUE, counted=outcome_counters(counter))
    consumer = await broker.consumer(QUEUE, handler, prefetch=5)
    await consumer.start()
    try:
        yield
    finally:
        await consumer.stop(5)


@given(st.integers(min_value=-(2**63), max_value=2**63), st.text(max_size=40))
def test_a_message_round_trips_through_its_encoding(job_id: int, note: str) -> None:
    """decode(encode(m)) == m; the body is the model's JSON."""
    job = Job(job_id=job_id, note=note)
    assert Job.decode(job.encode()) == job
    assert json.loads(job.encode()) == {"job_id": job_id, "note": note}


@given(st.binary(max_size=400))
def test_any_bytes_decode_or_raise_invalid_message(body: bytes) -> None:
    """Garbage is refused as InvalidMessage (to the DLQ), never as another exception (which would requeue)."""
    with contextlib.suppress(InvalidMessage):
        assert isinstance(Job.decode(body), Job)


def test_oversized_and_unknown_fields_are_invalid() -> None:
    """A body over max_bytes or with a field the contract lacks is refused, with the reason in the message."""
    with pytest.raises(InvalidMessage, match="exceeds 256"):
        Job.decode(Job(job_id=1, note="x" * 300).encode())
    with pytest.raises(InvalidMessage, match=r"other.*Extra inputs"):
        Job.decode(b'{"job_id": 1, "other": 2}')


def test_retry_delay_grows_and_is_bounded() -> None:
    """0.2 s on the first failure, doubling, never above 5 s (even for an absurd delivery count)."""
    delays = [retry_delay(n) for n in range(10)]
    assert delays[:3] == [0.2, 0.4, 0.8]
    assert delays == sorted(delays)
    assert max(delays) == retry_delay(10**9) == 5.0


@pytest.mark.parametrize("message_type", [Job, FastJob])
async def test_publish_work_sends_the_contract(work_broker: Broker, message_type: type[Job]) -> None:
    """publish_work puts the encoded message on its class's queue with its id, kind and persistence, with or
    without publisher confirms."""
    await work_broker.publish_work(message_type(job_id=7, note="日本"))
    await wait_depth(work_broker, QUEUE, 1)
    channel = await work_broker.connection.channel()
    try:
        queue = await channel.declare_queue(QUEUE, passive=True)
        message = await queue.get(no_ack=True)
    finally:
        await channel.close()
    assert message_type.decode(message.body) == message_type(job_id=7, note="日本")
    assert (message.message_id, message.type, message.content_type) == ("job-7", "job", "application/json")
    assert message.delivery_mode == 2


async def test_success_is_acked_and_counted(work_broker: Broker, counter: Counter) -> None:
    """A processed message is acked (the queue is empty, nothing unacked) and counted as processed."""
    recorder = Recorder()
    async with consuming(work_broker, recorder, counter):
        await work_broker.publish_work(Job(job_id=1))
        assert (await asyncio.wait_for(recorder.done.get(), 10)).job_id == 1
        await wait_depth(work_broker, QUEUE, 0)
    await asyncio.sleep(0.2)
    assert await queue_depth(work_broker, QUEUE) == 0  # after the consumer's channel closed: nothing came back
    assert (count(counter, "processed"), count(counter, "failed"), count(counter, "invalid")) == (1, 0, 0)


async def test_invalid_message_goes_to_the_dlq_untouched(work_broker: Broker, counter: Counter) -> None:
    """Garbage and a wrong shape are rejected to the DLQ at once, never processed; the next job still is."""
    recorder = Recorder()
    async with consuming(work_broker, recorder, counter):
        for body in (b"\x00garbage", b'{"job_id": "seven"}', b"[]"):
            await publish_raw(work_broker, QUEUE, body)
        await work_broker.publish_work(Job(job_id=2))
        await wait_depth(work_broker, f"{QUEUE}.dlq", 3)
        assert (await asyncio.wait_for(recorder.done.get(), 10)).job_id == 2
    assert [j for j, _ in recorder.calls] == [2]
    assert (count(counter, "invalid"), count(counter, "processed")) == (3, 1)


async def test_failure_is_requeued_with_backoff_then_succeeds(work_broker: Broker, counter: Counter) -> None:
    """A job that fails twice comes back twice, each time after the growing backoff, and is then acked."""
    recorder = Recorder(failures=2)
    async with consuming(work_broker, recorder, counter):
        await work_broker.publish_work(Job(job_id=3))
        assert (await asyncio.wait_for(recorder.done.get(), 15)).job_id == 3
        await wait_depth(work_broker, QUEUE, 0)
    times = [t for _, t in recorder.calls]
    assert len(times) == 3
    assert times[1] - times[0] >= retry_delay(0) * 0.9
    assert times[2] - times[1] >= retry_delay(1) * 0.9
    assert await queue_depth(work_broker, f"{QUEUE}.dlq") == 0
    assert (count(counter, "failed"), count(counter, "processed")) == (2, 1)


async def test_a_job_that_always_fails_ends_in_the_dlq_after_bounded_retries(
    work_broker: Broker, counter: Counter
) -> None:
    """Requeued until the queue's delivery limit (3), then dead-lettered: 4 tries, no loop."""
    recorder = Recorder(failures=100)
    async with consuming(work_broker, recorder, counter):
        await work_broker.publish_work(Job(job_id=4))
        await wait_depth(work_broker, f"{QUEUE}.dlq", 1, timeout=30)
    assert len(recorder.calls) == 4
    assert count(counter, "failed") == 4


async def test_duplicate_is_acked_and_counted_as_such(work_broker: Broker, counter: Counter) -> None:
    """A process that found the work already done acks the message and counts a duplicate."""
    recorder = Recorder(outcome="duplicate")
    async with consuming(work_broker, recorder, counter):
        await work_broker.publish_work(Job(job_id=5))
        await asyncio.wait_for(recorder.done.get(), 10)
        await wait_depth(work_broker, QUEUE, 0)
    assert (count(counter, "duplicate"), count(counter, "processed")) == (1, 0)


async def test_a_message_whose_channel_died_is_handed_out_again(work_broker: Broker, counter: Counter) -> None:
    """Acking on a channel that closed during the work raises nothing; the broker delivers the message again,
    with its delivery counted."""
    recorder = Recorder()
    handler = work_handler(Job.decode, recorder, queue=QUEUE, counted=outcome_counters(counter))
    await work_broker.publish_work(Job(job_id=6))
    await wait_depth(work_broker, QUEUE, 1)
    channel = await work_broker.connection.channel()
    queue = await channel.declare_queue(QUEUE, passive=True)
    first: AbstractIncomingMessage = await queue.get(no_ack=False)
    await channel.close()  # what a broker outage does to the channel a worker took the message on
    await handler(first)  # processes, then fails to ack: no exception escapes
    channel = await work_broker.connection.channel()
    try:
        queue = await channel.declare_queue(QUEUE, passive=True)
        deadline = time.monotonic() + 10
        again = await queue.get(no_ack=False, fail=False)
        while again is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            again = await queue.get(no_ack=False, fail=False)
        assert again is not None
        assert Job.decode(again.body).job_id == 6
        assert delivery_count(again) >= 1
        await again.ack()
    finally:
        await channel.close()
    assert [j for j, _ in recorder.calls] == [6]

"""Quorum queues against real RabbitMQ nodes: the delivery limit as a policy that changes without re-declaring
(a private node with the management API), the fallback to the queue argument, and the start race between
the service that owns a queue and the processes that consume it."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage
from pydantic import SecretStr

from isseimail_shared.messaging import Broker, QueueMissing
from isseimail_shared.queue_policy import POLICY_NAME, PolicyError, apply_delivery_limit_policy, vhost_of
from isseimail_shared.runtime import ConsumerSpec, Runtime, ServiceSpec
from isseimail_shared.settings import ServiceSettings
from isseimail_testing.private_infra import PrivateRabbitMQ
from isseimail_testing.queues import publish_raw

QUEUE = "policytest.work"


async def management_up(node: PrivateRabbitMQ) -> None:
    async with httpx.AsyncClient(auth=("guest", "guest"), timeout=5) as client:
        for _ in range(240):
            try:
                if (await client.get(node.management_url.replace("guest:guest@", "") + "api/overview")).is_success:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError("management API did not come up")


class Redeliveries:
    """A handler that refuses every message (nack, requeue) and counts how often each body came."""

    def __init__(self) -> None:
        self.seen: dict[bytes, int] = {}

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        self.seen[message.body] = self.seen.get(message.body, 0) + 1
        await message.nack(requeue=True)


async def dead_lettered(url: str, body: bytes, timeout: float = 60) -> None:
    """Wait until `body` sits in the queue's DLQ."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        dlq = await channel.declare_queue(f"{QUEUE}.dlq", passive=True)
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            message = await dlq.get(fail=False, no_ack=False)
            if message is not None:
                await message.nack(requeue=True)
                if message.body == body:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{body!r} not dead-lettered")
    finally:
        await connection.close()


async def run_once(node: PrivateRabbitMQ, limit: int, body: bytes) -> int:
    """Start a service with ISSEIMAIL_DELIVERY_LIMIT=limit and the management URL, send one message that its
    consumer always refuses, and return how many times it was delivered before it reached the DLQ."""
    settings = ServiceSettings(
        amqp_url=SecretStr(node.url),
        rabbitmq_management_url=SecretStr(node.management_url),
        delivery_limit=limit,
    )
    handler = Redeliveries()
    spec = ServiceSpec(
        name="policytest",
        schema="policytest",
        migrations=None,
        uses_database=False,
        consumers=lambda _rt: [ConsumerSpec(QUEUE, handler)],
    )
    runtime = Runtime(spec, settings)
    await runtime.start()
    try:
        await publish_raw(runtime.broker, QUEUE, body, message_id=body.decode())
        await dead_lettered(node.url, body)
    finally:
        await runtime.stop()
    return handler.seen[body]


@pytest.fixture(scope="module")
def managed(managed_rabbitmq: PrivateRabbitMQ) -> PrivateRabbitMQ:
    asyncio.run(management_up(managed_rabbitmq))
    return managed_rabbitmq


async def test_delivery_limit_changes_with_a_restart_not_a_redeclare(managed: PrivateRabbitMQ) -> None:
    """With the management API, the limit is the policy: the same queue (declared once, no argument) hands a
    refused message out limit+1 times, and after a restart with another limit the new number holds; the DLQ
    itself is not limited (what it holds stays)."""
    assert await run_once(managed, 2, b"first") == 3
    assert await run_once(managed, 4, b"second") == 5
    async with httpx.AsyncClient(auth=("guest", "guest"), timeout=10) as client:
        base = managed.management_url.replace("guest:guest@", "")
        queue = (await client.get(f"{base}api/queues/%2F/{QUEUE}")).json()
        policy = (await client.get(f"{base}api/policies/%2F/{POLICY_NAME}")).json()
    assert "x-delivery-limit" not in queue["arguments"]
    assert policy["definition"] == {"delivery-limit": 4}
    connection = await aio_pika.connect(managed.url)
    try:
        channel = await connection.channel()
        dlq = await channel.declare_queue(f"{QUEUE}.dlq", passive=True)
        for _ in range(8):  # more than any limit: a DLQ message refused again and again stays
            message = await dlq.get(no_ack=False, timeout=10)
            assert message is not None
            await message.nack(requeue=True)
        deadline = asyncio.get_running_loop().time() + 30
        while True:  # the last nack is on its way to the broker: wait for both to be ready again
            dlq = await channel.declare_queue(f"{QUEUE}.dlq", passive=True)
            if dlq.declaration_result.message_count == 2 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert dlq.declaration_result.message_count == 2
    finally:
        await connection.close()


async def test_policy_errors_name_no_credentials(managed: PrivateRabbitMQ) -> None:
    """Wrong credentials or no API at the address: PolicyError, with neither password in it."""
    wrong = managed.management_url.replace("guest:guest@", "guest:s3cret-pw@")
    with pytest.raises(PolicyError, match="HTTP 401") as refused:
        await apply_delivery_limit_policy(wrong, managed.url, 3)
    assert "s3cret-pw" not in str(refused.value)
    nobody = f"http://guest:s3cret-pw@127.0.0.1:{managed.port}/"  # the AMQP port speaks no HTTP
    with pytest.raises(PolicyError, match="unreachable") as unreachable:
        await apply_delivery_limit_policy(nobody, managed.url, 3, timeout=3)
    assert "s3cret-pw" not in str(unreachable.value)


@pytest.mark.parametrize(
    ("url", "vhost"),
    [
        ("amqp://g:g@h:5672/", "/"),
        ("amqp://g:g@h:5672", "/"),
        ("amqp://g:g@h/isseimail", "isseimail"),
        ("amqp://g:g@h/%2Fprod", "/prod"),
    ],
)
def test_vhost_of_reads_the_url_as_aiormq_does(url: str, vhost: str) -> None:
    assert vhost_of(url) == vhost


async def test_a_queue_declared_with_another_limit_is_used_as_it_is(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Changing the argument (or moving to the policy) on an existing queue: RabbitMQ refuses the re-declare;
    the service uses the queue as it is and says why, instead of failing to start."""
    first = Broker(amqp_url, name="t1", delivery_limit=5)
    await first.connect()
    try:
        await first.declare_owned(QUEUE)
    finally:
        await first.close()
    for limit in (7, None):
        broker = Broker(amqp_url, name="t2", delivery_limit=limit)
        await broker.connect()
        try:
            with caplog.at_level(logging.WARNING, logger="isseimail_shared.messaging"):
                consumer = await broker.consumer(QUEUE, Redeliveries(), prefetch=1)
            await consumer.start()
            await consumer.stop(1)
        finally:
            await broker.close()
    assert sum("keeps the delivery limit" in r.getMessage() for r in caplog.records) == 2


async def test_a_consumer_waits_for_the_owner_to_declare(amqp_url: str) -> None:
    """A worker started before the owning service waits (bounded) instead of crashing, then consumes; several
    owners and waiters starting at the same instant all come up."""
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def take(message: AbstractIncomingMessage) -> None:
        await message.ack()
        await got.put(message.body)

    brokers = [Broker(amqp_url, name=f"race-{i}") for i in range(6)]
    await asyncio.gather(*(b.connect() for b in brokers))
    try:
        waiters = [
            asyncio.create_task(b.consumer(QUEUE, take, prefetch=1, declare=False, wait=60)) for b in brokers[:3]
        ]
        await asyncio.sleep(1.0)
        assert not any(w.done() for w in waiters)  # nothing declared the queue yet: they wait
        await asyncio.gather(*(b.declare_owned(QUEUE) for b in brokers[3:]))  # replicas of the owner, at once
        consumers = await asyncio.wait_for(asyncio.gather(*waiters), 60)
        for consumer in consumers:
            await consumer.start()
        await publish_raw(brokers[3], QUEUE, b"batch-1")
        assert await asyncio.wait_for(got.get(), 30) == b"batch-1"
        for consumer in consumers:
            await consumer.stop(1)
    finally:
        await asyncio.gather(*(b.close() for b in brokers))


async def test_a_queue_nobody_declares_ends_the_wait_clearly(amqp_url: str) -> None:
    broker = Broker(amqp_url, name="lonely")
    await broker.connect()
    try:
        with pytest.raises(QueueMissing, match=f"queue {QUEUE} was not declared within 1.5 s"):
            await broker.consumer(QUEUE, Redeliveries(), declare=False, wait=1.5)
    finally:
        await broker.close()


async def test_a_waiting_consumer_consumes_again_after_a_broker_restart(private_rabbitmq: PrivateRabbitMQ) -> None:
    """A worker that waited for its queue (passive declare) is restored by the robust connection after the node
    restarts, and takes the next message."""
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def take(message: AbstractIncomingMessage) -> None:
        await message.ack()
        await got.put(message.body)

    owner, worker = Broker(private_rabbitmq.url, name="owner"), Broker(private_rabbitmq.url, name="worker")
    await owner.connect()
    await worker.connect()
    try:
        await owner.declare_owned("restart.batches")
        consumer = await worker.consumer("restart.batches", take, prefetch=1, declare=False, wait=30)
        await consumer.start()
        await publish_raw(owner, "restart.batches", b"before")
        assert await asyncio.wait_for(got.get(), 30) == b"before"
        await asyncio.to_thread(private_rabbitmq.restart)
        deadline = asyncio.get_running_loop().time() + 120
        while True:  # publishing fails until the owner's robust connection is back
            try:
                await publish_raw(owner, "restart.batches", b"after")
                break
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
        assert await asyncio.wait_for(got.get(), 120) == b"after"
        await consumer.stop(1)
    finally:
        await owner.close()
        await worker.close()

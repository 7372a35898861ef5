"""Messaging against the real RabbitMQ and PostgreSQL: outbox, idempotent consumers, DLQ, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest

from isseimail_shared.db import Conn, create_pool, migrate
from isseimail_shared.events import AdminCreated, Envelope, encode, envelope_for
from isseimail_shared.inbox import event_handler
from isseimail_shared.messaging import EVENTS_EXCHANGE, Broker, Consumer
from isseimail_shared.outbox import OutboxRelay, add_envelopes, add_event
from isseimail_testing.queues import queue_depth
from isseimail_testing.tcpproxy import TcpProxy

QUEUE = "test.admins"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, "t")
    await migrate(pool, "t", ["isseimail_shared.sql"])
    await pool.execute("CREATE TABLE seen (event_id uuid, email text)")
    yield pool
    await pool.close()


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    broker = Broker(amqp_url, name="test", delivery_limit=2)
    await broker.connect()
    yield broker
    await broker.close()


async def record(conn: Conn, envelope: Envelope, event: AdminCreated) -> None:
    await conn.execute("INSERT INTO seen VALUES ($1, $2)", envelope.event_id, event.email)


async def start_consumer(
    broker: Broker, pool: asyncpg.Pool, handler: Callable[[Conn, Envelope, Any], Awaitable[None]] = record
) -> Consumer:
    on_message = event_handler(pool, service="test", queue=QUEUE, handlers={AdminCreated: handler})
    consumer = await broker.consumer(QUEUE, on_message, bindings=["admin.created"], prefetch=5)
    await consumer.start()
    return consumer


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def seen_count(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM seen")
    return count


async def test_outbox_event_arrives_once(pool: asyncpg.Pool, broker: Broker) -> None:
    """An event written with the state change is published by the relay and handled exactly once."""
    consumer = await start_consumer(broker, pool)
    relay = OutboxRelay(pool, broker, service="test", schema="t", poll=5)
    task = asyncio.create_task(relay.run())
    try:
        async with pool.acquire() as conn, conn.transaction():
            await add_event(conn, AdminCreated(admin_id=1, email="a@example.jp"))
        await eventually(lambda: _equals(seen_count(pool), 1))  # woken by NOTIFY, not the 5 s poll
        # The consumer can record the event before the relay's own commit marks it published.
        await eventually(lambda: _equals(pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0))
        await asyncio.sleep(0.3)
        assert await seen_count(pool) == 1
    finally:
        task.cancel()
        await consumer.stop()
        await relay.close()


async def test_many_events_written_in_one_statement_arrive_once_each(pool: asyncpg.Pool, broker: Broker) -> None:
    """add_envelopes writes a group in one statement; the relay publishes the stored bytes with their ids, once."""
    consumer = await start_consumer(broker, pool)
    relay = OutboxRelay(pool, broker, service="test", schema="t", poll=5)
    envelopes = [envelope_for(AdminCreated(admin_id=n, email=f"a{n}@example.jp")) for n in range(30)]
    try:
        async with pool.acquire() as conn, conn.transaction():
            await add_envelopes(conn, envelopes, notify=False)
        assert await relay.publish_pending() == 30
        assert await relay.publish_pending() == 0
        await eventually(lambda: _equals(seen_count(pool), 30))
        seen = {(r["event_id"], r["email"]) for r in await pool.fetch("SELECT event_id, email FROM seen")}
        assert seen == {(e.event_id, f"a{n}@example.jp") for n, e in enumerate(envelopes)}
    finally:
        await consumer.stop()
        await relay.close()
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            await add_envelopes(conn, envelopes)


async def test_rolled_back_state_change_sends_nothing(pool: asyncpg.Pool, broker: Broker) -> None:
    """If the transaction fails, its event is never published."""
    relay = OutboxRelay(pool, broker, service="test", schema="t", poll=5)

    async def failing_change() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await add_event(conn, AdminCreated(admin_id=1, email="a@example.jp"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing_change()
    assert await relay.publish_pending() == 0


async def test_add_event_outside_transaction_is_refused(pool: asyncpg.Pool) -> None:
    """An event without a transaction could be lost or orphaned, so it is refused."""
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="inside"):
            await add_event(conn, AdminCreated(admin_id=1, email="a@example.jp"))


async def test_duplicate_delivery_is_processed_once(pool: asyncpg.Pool, broker: Broker) -> None:
    """The same event delivered twice runs its handler once; both copies are acked."""
    consumer = await start_consumer(broker, pool)
    envelope = envelope_for(AdminCreated(admin_id=1, email="dup@example.jp"))
    await broker.publish_event(envelope)
    await broker.publish_event(envelope)
    await eventually(lambda: _equals(seen_count(pool), 1))
    await eventually(lambda: _equals(queue_depth(broker, QUEUE), 0))
    await asyncio.sleep(0.3)
    assert await seen_count(pool) == 1
    await consumer.stop()


async def test_malformed_message_goes_to_dlq(pool: asyncpg.Pool, broker: Broker) -> None:
    """Garbage, an unknown type and a bad payload land in the DLQ; the consumer keeps working."""
    consumer = await start_consumer(broker, pool)
    channel = await broker.connection.channel()
    exchange = await channel.get_exchange(EVENTS_EXCHANGE)
    for body in (b"\x00garbage", b'{"type": "admin.created"}', _bad_payload()):
        await exchange.publish(aio_pika.Message(body), routing_key="admin.created")
    await broker.publish_event(envelope_for(AdminCreated(admin_id=2, email="ok@example.jp")))
    await eventually(lambda: _equals(queue_depth(broker, f"{QUEUE}.dlq"), 3))
    await eventually(lambda: _equals(seen_count(pool), 1))
    await channel.close()
    await consumer.stop()


async def test_failing_handler_ends_in_dlq_after_bounded_retries(pool: asyncpg.Pool, broker: Broker) -> None:
    """A handler that always fails is retried delivery_limit times, then the message is dead-lettered."""
    calls = 0

    async def failing(conn: Conn, envelope: Envelope, event: AdminCreated) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("downstream broken")

    consumer = await start_consumer(broker, pool, failing)
    await broker.publish_event(envelope_for(AdminCreated(admin_id=3, email="x@example.jp")))
    await eventually(lambda: _equals(queue_depth(broker, f"{QUEUE}.dlq"), 1), timeout=30)
    assert calls == 3  # the first delivery plus delivery_limit=2 redeliveries
    assert await pool.fetchval("SELECT count(*) FROM processed_events") == 0  # rolled back each time
    await consumer.stop()


async def test_event_written_while_broker_down_is_published_later(pool: asyncpg.Pool, amqp_url: str) -> None:
    """With RabbitMQ unreachable the event waits in the outbox and goes out once the broker is back."""
    target = urlsplit(amqp_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    proxied = urlunsplit(target._replace(netloc=f"guest:guest@127.0.0.1:{proxy.port}"))
    direct = Broker(amqp_url, name="direct", delivery_limit=2)
    await direct.connect()
    consumer = await start_consumer(direct, pool)
    relay_broker = Broker(proxied, name="relay", delivery_limit=2)
    await relay_broker.connect()
    relay = OutboxRelay(pool, relay_broker, service="test", schema="t", poll=0.2)
    task = asyncio.create_task(relay.run())
    try:
        proxy.cut()
        async with pool.acquire() as conn, conn.transaction():
            await add_event(conn, AdminCreated(admin_id=4, email="later@example.jp"))
        await asyncio.sleep(1.5)
        assert await seen_count(pool) == 0
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
        proxy.restore()
        await eventually(lambda: _equals(seen_count(pool), 1), timeout=30)
    finally:
        task.cancel()
        await relay.close()
        await consumer.stop()
        await relay_broker.close()
        await direct.close()
        await proxy.stop()


async def test_consumer_killed_before_ack_gets_message_again(pool: asyncpg.Pool, broker: Broker, amqp_url: str) -> None:
    """A consumer whose connection dies mid-handler never acks; the next consumer processes the event once."""
    started = asyncio.Event()

    async def hangs(conn: Conn, envelope: Envelope, event: AdminCreated) -> None:
        started.set()
        await asyncio.sleep(3600)

    target = urlsplit(amqp_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    doomed = Broker(
        urlunsplit(target._replace(netloc=f"guest:guest@127.0.0.1:{proxy.port}")), name="doomed", delivery_limit=2
    )
    await doomed.connect()
    doomed_consumer = await start_consumer(doomed, pool, hangs)
    await broker.publish_event(envelope_for(AdminCreated(admin_id=5, email="again@example.jp")))
    await asyncio.wait_for(started.wait(), 10)
    proxy.cut()  # what SIGKILL looks like to the broker: the consumer's TCP connection just disappears
    survivor = await start_consumer(broker, pool)
    try:
        await eventually(lambda: _equals(seen_count(pool), 1), timeout=20)
    finally:
        await survivor.stop()
        await doomed_consumer.stop(grace=0.1)
        await doomed.close()  # else its robust connection keeps reconnecting to the proxy for the whole run
        await proxy.stop()


def _bad_payload() -> bytes:
    envelope = envelope_for(AdminCreated(admin_id=1, email="a@example.jp"))
    return encode(envelope).replace(b'"admin_id":1', b'"admin_id":"one"')


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected

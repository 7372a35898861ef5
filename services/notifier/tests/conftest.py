"""Fixtures for the notifier's tests: publish events on the real broker, read the notifier's schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiosmtplib
import asyncpg
import pytest

from isseimail_notifier.bounce_listener import BounceListener
from isseimail_shared.app import runtime_of
from isseimail_shared.events import Envelope, Event, envelope_for
from isseimail_shared.messaging import Broker

Publish = Callable[..., Awaitable[Envelope]]


@pytest.fixture
async def publish(amqp_url: str) -> AsyncIterator[Publish]:
    """Publish an event (optionally with a fixed envelope) on this test's vhost, with confirms."""
    broker = Broker(amqp_url, name="test-publisher")
    await broker.connect()

    async def send(event: Event, envelope: Envelope | None = None) -> Envelope:
        env = envelope or envelope_for(event)
        await broker.publish_event(env)
        return env

    yield send
    await broker.close()


@pytest.fixture
async def notifier_db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this test's database with the notifier's schema on the search path."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    yield conn
    await conn.close()


def listener_port(app: Any) -> int:
    """The port the running notifier app's SMTP listener took (tests configure port 0)."""
    return runtime_of(app).registry.get(BounceListener).port


async def smtp_send(port: int, rcpt: str, data: bytes, mail_from: str = "") -> tuple[int, str]:
    """Deliver raw bytes to the listener like a remote MTA (null sender unless given); returns the final answer."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await client.connect()
    try:
        await client.mail(mail_from)
        await client.rcpt(rcpt)
        response = await client.data(data)
        return response.code, response.message
    finally:
        client.close()


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    """Poll an async check until it returns something truthy."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


class EventSink:
    """Collects every event published with the given routing keys (a queue of its own on the test vhost)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Event]:
        await wait_until(lambda: _enough(self.events, count), timeout)
        return list(self.events)


async def _enough(items: list[Event], count: int) -> bool:
    return len(items) >= count


@pytest.fixture
async def event_sink(amqp_url: str) -> AsyncIterator[Callable[..., Awaitable[EventSink]]]:
    """`await event_sink("delivery.bounced")` starts collecting those events."""
    import uuid

    from aio_pika.abc import AbstractIncomingMessage

    from isseimail_shared.events import decode

    broker = Broker(amqp_url, name="test-sink")
    await broker.connect()

    async def make(*keys: str) -> EventSink:
        sink = EventSink()

        async def on_message(message: AbstractIncomingMessage) -> None:
            sink.events.append(decode(message.body)[1])
            await message.ack()

        consumer = await broker.consumer(f"test.sink.{uuid.uuid4().hex[:8]}", on_message, bindings=keys)
        await consumer.start()
        return sink

    yield make
    await broker.close()

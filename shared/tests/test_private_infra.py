"""The private PostgreSQL and RabbitMQ the fault tests restart: a restart loses no committed row and no
durable, confirmed message; an uncommitted transaction is gone; the same URL answers again."""

from __future__ import annotations

import asyncio

import aio_pika
import asyncpg
import pytest

from isseimail_testing.private_infra import PrivatePostgres, PrivateRabbitMQ


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_keeps_committed_rows_only(private_postgres: PrivatePostgres, mode: str) -> None:
    conn = await asyncpg.connect(private_postgres.url)
    await conn.execute(f"CREATE TABLE kept_{mode} (n int)")
    await conn.execute(f"INSERT INTO kept_{mode} SELECT generate_series(1, 1000)")
    open_tx = await asyncpg.connect(private_postgres.url)
    await open_tx.execute("BEGIN")
    await open_tx.execute(f"INSERT INTO kept_{mode} VALUES (-1)")
    # in a thread: pg_ctl waits for the server, which waits for our open connections to be dropped
    await asyncio.to_thread(private_postgres.restart, mode)
    with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)):
        await conn.fetchval("SELECT 1")
    conn = await asyncpg.connect(private_postgres.url)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM kept_{mode} WHERE n > 0") == 1000
        assert await conn.fetchval(f"SELECT count(*) FROM kept_{mode} WHERE n < 0") == 0
    finally:
        await conn.close()
    print(f"private PostgreSQL timings: {private_postgres.timings}")
    assert private_postgres.timings[f"restart-{mode}"] < 30


async def publish(url: str, queue: str, args: dict[str, object], count: int) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True, arguments=args)
        for i in range(count):
            message = aio_pika.Message(str(i).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue)


async def drain(url: str, queue: str, args: dict[str, object]) -> list[str]:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        q = await channel.declare_queue(queue, durable=True, arguments=args)
        bodies: list[str] = []
        while (message := await q.get(fail=False, no_ack=True, timeout=60)) is not None:
            bodies.append(message.body.decode())
        return bodies


QUORUM = {"x-queue-type": "quorum"}


# No SIGKILL of the node here: RabbitMQ 3.10 sometimes leaves a quorum queue without a leader after it.
@pytest.mark.parametrize("how", ["restart", "restart_app"])
async def test_rabbitmq_restart_keeps_confirmed_durable_messages(private_rabbitmq: PrivateRabbitMQ, how: str) -> None:
    for name, args in (("quorum", QUORUM), ("classic", {})):
        await publish(private_rabbitmq.url, f"{how}.{name}", args, 200)
    await asyncio.to_thread(getattr(private_rabbitmq, how))
    for name, args in (("quorum", QUORUM), ("classic", {})):
        bodies = await drain(private_rabbitmq.url, f"{how}.{name}", args)
        assert bodies == [str(i) for i in range(200)], name
    print(f"private RabbitMQ timings: {private_rabbitmq.timings}")


def test_private_servers_do_not_touch_the_shared_ones(
    private_postgres: PrivatePostgres, private_rabbitmq: PrivateRabbitMQ
) -> None:
    assert private_postgres.port != 5432
    assert private_rabbitmq.port != 5672
    assert not private_rabbitmq.node.startswith("rabbit@")

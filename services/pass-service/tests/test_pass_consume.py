"""Consumption: exactly one of 50 concurrent calls wins, and exactly one pass.consumed reaches the broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aio_pika
import asyncpg
import httpx
from prometheus_client import REGISTRY

from .conftest import DAY, FakeClock, issue

EXPIRED = "この1DayPassは失効しています。再度申請してください。"


async def test_fifty_concurrent_consumptions_one_winner_one_event(
    client: httpx.AsyncClient, db: asyncpg.Connection, clock: FakeClock, amqp_url: str
) -> None:
    """50 simultaneous consume calls: one 200 won, 49 409 with 失効; one pass.consumed on a bound queue."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("isseimail.events", aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("test.pass-consumed", durable=True)
        await queue.bind(exchange, routing_key="pass.consumed")

        issued = await issue(client, db)
        clock.at(DAY, hour=15)
        won_before = REGISTRY.get_sample_value("isseimail_pass_consumptions_total", {"result": "won"}) or 0
        campaigns = [uuid.uuid4() for _ in range(50)]
        answers = await asyncio.gather(
            *(
                client.post(f"/internal/passes/{issued.pass_id}/consume", json={"campaign_id": str(c)})
                for c in campaigns
            )
        )
        codes = [r.status_code for r in answers]
        assert codes.count(200) == 1
        assert codes.count(409) == 49
        winner = campaigns[codes.index(200)]
        assert answers[codes.index(200)].json() == {"won": True}
        assert all(r.json()["detail"] == EXPIRED for r in answers if r.status_code == 409)
        metrics = (await client.get("/metrics")).text
        assert "isseimail_pass_consumptions_total" in metrics
        assert REGISTRY.get_sample_value("isseimail_pass_consumptions_total", {"result": "won"}) == won_before + 1

        # Wait until the relay has published everything, then count what reached the queue.
        deadline = time.monotonic() + 15
        while await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
            assert time.monotonic() < deadline, "outbox not drained"
            await asyncio.sleep(0.05)
        bodies = []
        while (message := await queue.get(no_ack=True, fail=False, timeout=2)) is not None:
            bodies.append(json.loads(message.body))
        assert len(bodies) == 1
        assert bodies[0]["payload"] == {
            "pass_id": issued.pass_id,
            "campaign_id": str(winner),
            "user_id": issued.user_id,
        }
        assert await db.fetchval("SELECT campaign_id FROM passes WHERE id = $1", issued.pass_id) == winner
        assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'pass.consumed'") == 1
    finally:
        await connection.close()


async def test_consumption_only_on_the_day(client: httpx.AsyncClient, db: asyncpg.Connection, clock: FakeClock) -> None:
    """Before or after its day a pass cannot be consumed; unknown passes are 404; bad bodies 422."""
    issued = await issue(client, db)
    body = {"campaign_id": str(uuid.uuid4())}
    r = await client.post(f"/internal/passes/{issued.pass_id}/consume", json=body)
    assert r.status_code == 409  # 12-01, the pass is for 12-03
    clock.at(DAY.replace(day=4))
    assert (await client.post(f"/internal/passes/{issued.pass_id}/consume", json=body)).status_code == 409
    assert await db.fetchval("SELECT state FROM passes") == "active"
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE routing_key = 'pass.consumed'") == 0
    assert (await client.post("/internal/passes/987654/consume", json=body)).status_code == 404
    assert (await client.get("/internal/passes/987654")).status_code == 404
    r = await client.post(f"/internal/passes/{issued.pass_id}/consume", json={"campaign_id": "not-a-uuid"})
    assert r.status_code == 422

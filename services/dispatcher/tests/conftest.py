"""Dispatcher test fixtures: a composer snapshot peer on a real port, event publishing and watching."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from isseimail_shared.events import CampaignAccepted, Envelope, decode, envelope_for
from isseimail_shared.mailmerge import CampaignTemplate, Recipient, render_campaign
from isseimail_shared.messaging import EVENTS_EXCHANGE, Broker
from isseimail_shared.testing.http import serving

SENDER = "sender@corp.example.jp"


@dataclass
class SnapshotPeer:
    """Serves GET /internal/campaigns/{id}/snapshot exactly as docs/internal-api.md describes it."""

    url: str = ""
    campaigns: dict[uuid.UUID, tuple[CampaignTemplate, list[Recipient]]] = field(default_factory=dict)
    requests: int = 0

    def add(
        self,
        recipients: list[Recipient],
        *,
        attachments: list[tuple[str, bytes]] | None = None,
        subject: str = "ご案内",
    ) -> uuid.UUID:
        campaign_id = uuid.uuid4()
        template = render_campaign(SENDER, "送信 太郎", subject, "本文です。\n.先頭のドット", attachments=attachments)
        own = Recipient(row=0, email=SENDER, contact="送信 太郎")
        self.campaigns[campaign_id] = (template, [*recipients, own])
        return campaign_id

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/campaigns/{campaign_id}/snapshot")
        async def snapshot(campaign_id: uuid.UUID) -> StreamingResponse:
            self.requests += 1
            template, rows = self.campaigns[campaign_id]

            async def lines() -> AsyncIterator[bytes]:
                head = {
                    "campaign": {
                        "campaign_id": str(campaign_id),
                        "sender_email": SENDER,
                        "sender_name": template.sender_name,
                        "subject": template.subject,
                        "recipient_count": len(rows) - 1,
                    },
                    "template": template.model_dump(mode="json"),
                }
                yield json.dumps(head, ensure_ascii=False).encode() + b"\n"
                for r in rows:
                    yield r.model_dump_json().encode() + b"\n"

            return StreamingResponse(lines(), media_type="application/x-ndjson")

        return app


@pytest.fixture
async def snapshot_peer() -> AsyncIterator[SnapshotPeer]:
    """A stand-in composer on a loopback port serving the snapshot NDJSON contract."""
    peer = SnapshotPeer()
    async with serving(peer.app()) as url:
        peer.url = url
        yield peer


def recipients(count: int, domain: str = "example.jp", start: int = 1) -> list[Recipient]:
    return [
        Recipient(row=i, email=f"user{i}@{domain}", company="株式会社テスト", contact=f"担当 {i}")
        for i in range(start, start + count)
    ]


class EventWatch:
    """A queue of its own bound to some routing keys: what the dispatcher published, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Envelope, Any]] = []

    def of(self, event_type: str) -> list[Any]:
        return [payload for env, payload in self.events if env.type == event_type]

    async def wait_for(self, event_type: str, count: int = 1, timeout: float = 30.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.of(event_type)) < count:  # noqa: ASYNC110 - polling a list filled by a consumer
                await asyncio.sleep(0.05)
        return self.of(event_type)


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    """A broker connection of the test's own, for publishing events and watching them."""
    b = Broker(amqp_url, name="dispatcher-test")
    await b.connect()
    yield b
    await b.close()


@pytest.fixture
async def watch(broker: Broker) -> AsyncIterator[EventWatch]:
    w = EventWatch()
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    for key in ("delivery.*", "campaign.*"):
        await queue.bind(EVENTS_EXCHANGE, routing_key=key)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            w.events.append(decode(message.body))

    await queue.consume(on_message)
    yield w
    await channel.close()


async def accept(broker: Broker, campaign_id: uuid.UUID, count: int, *, event_id: uuid.UUID | None = None) -> None:
    event = CampaignAccepted(
        campaign_id=campaign_id, pass_id=1, recipient_count=count, sender_email=SENDER, subject="x"
    )
    await broker.publish_event(envelope_for(event, event_id=event_id))


@pytest.fixture
def make_recipients() -> Any:
    """recipients(count, domain=..., start=...) -> rows as the list validator serves them."""
    return recipients


@pytest.fixture
def accept_campaign(broker: Broker) -> Any:
    """Publish campaign.accepted for a campaign the snapshot peer knows."""

    async def publish(campaign_id: uuid.UUID, count: int, event_id: uuid.UUID | None = None) -> None:
        await accept(broker, campaign_id, count, event_id=event_id)

    return publish

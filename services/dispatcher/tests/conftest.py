"""Dispatcher test fixtures: event publishing and watching (broker and snapshot peer come from the shared plugin),
fast settings, running the API with its workers, and reading what they stored."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from isseimail_dispatcher.app import create_app, create_worker_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.db import create_pool, migrate
from isseimail_shared.events import CampaignAccepted, CampaignCompleted, envelope_for
from isseimail_shared.mailmerge import Recipient
from isseimail_shared.messaging import Broker
from isseimail_testing.dns import DnsServer
from isseimail_testing.process import running_app
from isseimail_testing.snapshot import SENDER, SnapshotPeer, make_recipients
from isseimail_testing.watch import EventWatch, watching

DKIM_KEY_SECRET = "x3uLq0tOQ3bH2b8m3dX4d5pXw1hZb0v3b9mU8kq7n6Y="  # a Fernet key for tests only


@pytest.fixture
async def watch(broker: Broker) -> AsyncIterator[EventWatch]:
    """Every deliveries.* and campaign.* event published during the test."""
    async with watching(broker, ["deliveries.*", "campaign.*"]) as w:
        yield w


async def accept(broker: Broker, campaign_id: uuid.UUID, count: int, *, event_id: uuid.UUID | None = None) -> None:
    event = CampaignAccepted(
        campaign_id=campaign_id, pass_id=1, recipient_count=count, sender_email=SENDER, subject="x"
    )
    await broker.publish_event(envelope_for(event, event_id=event_id))


@pytest.fixture(name="make_recipients")
def make_recipients_fixture() -> Any:
    """make_recipients(count, domain=..., start=...) -> rows as the list validator serves them."""
    return make_recipients


@pytest.fixture
def accept_campaign(broker: Broker) -> Any:
    """Publish campaign.accepted for a campaign the snapshot peer knows."""

    async def publish(campaign_id: uuid.UUID, count: int, event_id: uuid.UUID | None = None) -> None:
        await accept(broker, campaign_id, count, event_id=event_id)

    return publish


@pytest.fixture
def send_campaign(
    snapshot_peer: SnapshotPeer, accept_campaign: Any, watch: EventWatch
) -> Callable[[list[Recipient]], Awaitable[CampaignCompleted]]:
    """send_campaign(rows): give the snapshot peer a campaign to these rows (plus the sender's copy), accept it,
    and return its campaign.completed once the running dispatcher has sent it."""

    async def send(rows: list[Recipient]) -> CampaignCompleted:
        done = len(watch.of("campaign.completed"))
        campaign_id = snapshot_peer.add(rows)
        await accept_campaign(campaign_id, len(rows))
        completed: CampaignCompleted = (await watch.wait_for("campaign.completed", done + 1))[done]
        assert completed.campaign_id == campaign_id
        return completed

    return send


@pytest.fixture
def fast_settings(make_settings: Callable[..., Any], snapshot_peer: SnapshotPeer) -> Callable[..., DispatcherSettings]:
    """fast_settings(**overrides): settings reading snapshots from the snapshot peer, with short retry, scheduler
    and claim intervals so that a campaign with retries finishes in seconds."""

    def build(**overrides: Any) -> DispatcherSettings:
        values: dict[str, Any] = {
            "composer_url": snapshot_peer.url,
            "batch_size": 5,
            "retry_base_seconds": 0.1,
            "scheduler_seconds": 0.2,
            "claim_seconds": 2.0,
            **overrides,
        }
        settings: DispatcherSettings = make_settings(DispatcherSettings, **values)
        return settings

    return build


@pytest.fixture
def dkim_settings(make_settings: Callable[..., Any], dns_server: DnsServer) -> Callable[..., DispatcherSettings]:
    """dkim_settings(**overrides): settings resolving DNS on the test server, with a secret for stored DKIM keys."""

    def build(**overrides: Any) -> DispatcherSettings:
        values = {"dns_nameservers": dns_server.nameserver, "dkim_key_secret": DKIM_KEY_SECRET, **overrides}
        settings: DispatcherSettings = make_settings(DispatcherSettings, **values)
        return settings

    return build


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the dispatcher's schema, migrated, in this test's database (no app running)."""
    p = await create_pool(database_url, "dispatcher")
    await migrate(p, "dispatcher", ["isseimail_shared.sql", "isseimail_dispatcher.migrations"])
    yield p
    await p.close()


@contextlib.asynccontextmanager
async def running_dispatcher(
    settings: DispatcherSettings, workers: int = 1
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The API app and `workers` SMTP worker apps on one settings; yields clients of the API and the first worker."""
    async with running_app(create_app(settings)) as api, contextlib.AsyncExitStack() as stack:
        started = [await stack.enter_async_context(running_app(create_worker_app(settings))) for _ in range(workers)]
        yield api, started[0]


async def deliveries(database_url: str) -> dict[str, asyncpg.Record]:
    """The dispatcher's deliveries rows by recipient address."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT * FROM dispatcher.deliveries")
    finally:
        await conn.close()
    return {r["email"]: r for r in rows}

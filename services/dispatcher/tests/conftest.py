"""Dispatcher test fixtures: event publishing and watching (broker and snapshot peer come from the shared plugin)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from isseimail_shared.events import CampaignAccepted, envelope_for
from isseimail_shared.messaging import Broker
from isseimail_shared.testing.snapshot import SENDER, make_recipients
from isseimail_shared.testing.watch import EventWatch, watching


@pytest.fixture
async def watch(broker: Broker) -> AsyncIterator[EventWatch]:
    """Every delivery.* and campaign.* event published during the test."""
    async with watching(broker, ["delivery.*", "campaign.*"]) as w:
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

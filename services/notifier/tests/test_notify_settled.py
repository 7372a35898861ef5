"""deliveries.settled with the real database, broker and SMTP: one row per group, failures reported, bounces named."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import CampaignAccepted, DeliveriesSettled, SettledFailure
from isseimail_shared.verp import bounce_address
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer

from .conftest import listener_port, smtp_send, wait_until
from .test_notify_bounce_listener import DOMAIN, SECRET, SENDER, _dsn_for


async def test_settled_group_is_one_row_reports_its_failures_and_names_bounced_addresses(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """200 delivered + 2 failed in one event: one delivered_groups row, a report naming both failures, and a
    bounce for a delivery in the middle of the group names that delivery's address and CSV row."""
    app = create_app(make_settings(NotifierSettings, failure_digest_seconds=0.5))
    campaign = uuid.uuid4()
    ids = list(range(1000, 1200))
    async with running_app(app):
        await publish(
            CampaignAccepted(campaign_id=campaign, pass_id=1, recipient_count=202, sender_email=SENDER, subject="件名A")
        )
        await publish(
            DeliveriesSettled(
                campaign_id=campaign,
                sender_email=SENDER,
                subject="件名A",
                delivered_ids=ids,
                delivered_rows=[i - 990 for i in ids],
                delivered_to=[f"User{i}@example.co.jp" for i in ids],
                failed=[
                    SettledFailure(
                        delivery_id=2000 + n,
                        recipient=f"bad{n}@example.co.jp",
                        row_number=500 + n,
                        smtp_code=550,
                        enhanced_status="5.1.1",
                        diagnostic="550 5.1.1 User unknown",
                    )
                    for n in (1, 2)
                ],
            )
        )
        await wait_until(lambda: notifier_db.fetchval("SELECT count(*) FROM delivered_groups"))
        report = (await smtp_server.wait_for(1, rcpt=SENDER))[0].message().get_content()
        assert "bad1@example.co.jp" in report
        assert "bad2@example.co.jp" in report
        assert await notifier_db.fetchval("SELECT count(*) FROM failures WHERE campaign_id = $1", campaign) == 2
        verp = bounce_address(SECRET, DOMAIN, campaign, 1111)
        code, _ = await smtp_send(listener_port(app), verp, _dsn_for("someone-else@example.co.jp"))
        assert code == 250
        await wait_until(
            lambda: notifier_db.fetchval("SELECT count(*) FROM failures WHERE source = 'bounce' AND delivery_id = 1111")
        )
    assert await notifier_db.fetchval("SELECT count(*) FROM delivered_groups") == 1
    assert await notifier_db.fetchval("SELECT count(*) FROM deliveries") == 0  # no row per delivered recipient
    bounced = await notifier_db.fetchrow("SELECT recipient, row_number FROM failures WHERE source = 'bounce'")
    assert bounced is not None
    assert (bounced["recipient"], bounced["row_number"]) == ("user1111@example.co.jp", 121)
    assert await notifier_db.fetchval("SELECT count(*) FROM delivered_to($1, 1200)", campaign) == 0
    assert await notifier_db.fetchval("SELECT count(*) FROM delivered_to($1, 1111)", uuid.uuid4()) == 0

"""Delay notices and carrier filters end to end: 遅延中 in the completion mail until the final DSN, and a
docomo/au "user unknown" after DATA reported as the recipient's filter, suppressed for the sender's
organisation only."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import CampaignAccepted, CampaignCompleted, DeliveryDelayed, DeliverySucceeded
from isseimail_shared.verp import bounce_address
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer

from .conftest import listener_port, smtp_send, wait_until
from .test_notify_bounce_listener import BOUNCES, DOMAIN, SECRET

SENDER = "soumu@corp.example"


async def test_delay_is_shown_then_failed_and_carrier_filter_is_per_organisation(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    notifier_db: asyncpg.Connection,
    event_sink: Callable[..., Any],
) -> None:
    """A delay DSN makes no failure but lists the recipient as 遅延中 in the completion mail; the final DSN
    turns it into a failure. A docomo filter refusal is reported with what the recipient can do, and
    suppresses the address for the sender's organisation, not for everyone."""
    sink = await event_sink("delivery.delayed")
    app = create_app(make_settings(NotifierSettings))
    campaign = uuid.uuid4()
    async with running_app(app) as client:
        await publish(
            CampaignAccepted(
                campaign_id=campaign, pass_id=1, recipient_count=2, sender_email=SENDER, subject="防災訓練のご案内"
            )
        )
        for delivery, recipient, row in ((21, "Slow@example.org", 3), (22, "keitai.user@docomo.ne.jp", 4)):
            await publish(
                DeliverySucceeded(
                    campaign_id=campaign, delivery_id=delivery, recipient=recipient, smtp_code=250, row_number=row
                )
            )
        await wait_until(lambda: notifier_db.fetchval("SELECT count(*) = 2 FROM deliveries"))
        await wait_until(lambda: notifier_db.fetchval("SELECT count(*) FROM campaigns"))
        port = listener_port(app)
        delayed = (BOUNCES / "postfix" / "03-delayed.eml").read_bytes()
        for _ in range(2):  # a second notice for the same delivery publishes nothing new
            code, _ = await smtp_send(port, bounce_address(SECRET, DOMAIN, campaign, 21), delayed)
            assert code == 250
        (event,) = await sink.wait_for(1)
        assert isinstance(event, DeliveryDelayed)
        assert (event.delivery_id, event.recipient, event.status) == (21, "slow@example.org", "4.4.1")
        filtered = (BOUNCES / "docomo" / "01-unknown-user-after-data.eml").read_bytes()
        code, _ = await smtp_send(port, bounce_address(SECRET, DOMAIN, campaign, 22), filtered)
        assert code == 250

        assert await notifier_db.fetchval("SELECT count(*) FROM failures WHERE delivery_id = 21") == 0
        row = await notifier_db.fetchrow("SELECT recipient, row_number, status FROM delayed_deliveries")
        assert (row["recipient"], row["row_number"], row["status"]) == ("slow@example.org", 3, "4.4.1")
        everyone = await client.post("/internal/suppressions/check", json={"addresses": ["keitai.user@docomo.ne.jp"]})
        assert everyone.json() == {"suppressed": {}}
        same_org = await client.post(
            "/internal/suppressions/check",
            json={"addresses": ["keitai.user@docomo.ne.jp"], "organisation": "corp.example"},
        )
        assert same_org.json() == {"suppressed": {"keitai.user@docomo.ne.jp": "filtered"}}
        report = (await smtp_server.wait_for(1, rcpt=SENDER))[0].message().get_content()
        assert "keitai.user@docomo.ne.jp" in report
        assert "指定受信" in report
        assert "ドメイン指定受信への追加" in report  # what the recipient can do

        start = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.UTC)
        await publish(
            CampaignCompleted(
                campaign_id=campaign,
                sender_email=SENDER,
                subject="防災訓練のご案内",
                total=2,
                sent=2,
                failed=0,
                started_at=start,
                finished_at=start + dt.timedelta(minutes=1),
            )
        )
        mails = await smtp_server.wait_for(2, rcpt=SENDER)
        completion = next(m.message() for m in mails if "送信完了" in m.message()["Subject"])
        body = completion.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        assert "遅延中: 1 件" in text
        assert "- slow@example.org（CSVの行: 3 行目）: 遅延中（4.4.1）" in text

        final = (BOUNCES / "exim" / "02-retry-timeout.eml").read_bytes()
        code, _ = await smtp_send(port, bounce_address(SECRET, DOMAIN, campaign, 21), final)
        assert code == 250
        assert await notifier_db.fetchval("SELECT reason FROM failures WHERE delivery_id = 21") == "expired"
        assert await notifier_db.fetchval("SELECT count(*) FROM delayed_deliveries") == 0
    assert len(sink.events) == 1

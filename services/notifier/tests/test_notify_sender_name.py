"""The sender's reports greet the 送信者名 given at compose (送信者名 様), not the address."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import CampaignAccepted, CampaignCompleted, CampaignPaused, DeliveryFailed
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer

from .conftest import wait_until

SENDER = "koho@example.jp"
NAME = "株式会社サンプル 広報部 山田花子"
SUBJECT = "新製品のご案内"


def _accepted(campaign: uuid.UUID, sender_name: str) -> CampaignAccepted:
    return CampaignAccepted(
        campaign_id=campaign,
        pass_id=7,
        recipient_count=3,
        sender_email=SENDER,
        subject=SUBJECT,
        sender_name=sender_name,
    )


async def test_failure_completion_and_paused_mails_greet_the_sender_by_name(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """After campaign.accepted named the sender, the failure report, the completion mail and the paused mail
    open with "送信者名 様"; a campaign whose event carried no name (older composer) greets the address."""
    app = create_app(make_settings(NotifierSettings))
    named, paused, unnamed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with running_app(app):
        for campaign, name in ((named, NAME), (paused, NAME), (unnamed, "")):
            await publish(_accepted(campaign, name))
        await wait_until(lambda: _remembered(notifier_db, 3))
        await publish(
            DeliveryFailed(
                campaign_id=named,
                delivery_id=1,
                recipient="gone@example.jp",
                row_number=2,
                sender_email=SENDER,
                subject=SUBJECT,
                smtp_code=550,
                enhanced_status="5.1.1",
                diagnostic="550 5.1.1 user unknown",
            )
        )
        await smtp_server.wait_for(1, rcpt=SENDER)
        start = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)
        for campaign in (named, unnamed):
            await publish(
                CampaignCompleted(
                    campaign_id=campaign,
                    sender_email=SENDER,
                    subject=SUBJECT,
                    total=3,
                    sent=2 if campaign == named else 3,
                    failed=1 if campaign == named else 0,
                    started_at=start,
                    finished_at=start + dt.timedelta(minutes=1),
                )
            )
        await publish(
            CampaignPaused(
                campaign_id=paused, sender_email=SENDER, subject=SUBJECT, total=3, sent=0, failed=3, failure_rate=1.0
            )
        )
        mails = await smtp_server.wait_for(4, rcpt=SENDER, timeout=30)
    greetings = []
    for mail in mails:
        message = mail.message()
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        greetings.append((str(message["Subject"]).split("：")[0], body.get_content().splitlines()[0]))
    assert sorted(greetings) == sorted(
        [
            ("【一斉メール】配信エラーのお知らせ", f"{NAME} 様"),
            ("【一斉メール】送信完了のお知らせ", f"{NAME} 様"),
            ("【一斉メール】送信完了のお知らせ", f"{SENDER} 様"),
            ("【一斉メール】送信停止のお知らせ", f"{NAME} 様"),
        ]
    )


async def _remembered(conn: asyncpg.Connection, expected: int) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM campaigns") == expected)

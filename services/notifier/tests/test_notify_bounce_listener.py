"""The bounce listener with the real database, broker and SMTP: store, suppress, report, refuse forgeries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import pytest

from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import CampaignAccepted, DeliveryBounced, DeliverySucceeded
from isseimail_shared.verp import bounce_address
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer

from .conftest import listener_port, smtp_send, wait_until

BOUNCES = Path(__file__).parent / "bounces"
SECRET = b"test-verp-secret"  # what make_settings gives every service
DOMAIN = "bounce.isseimail.localhost"
SENDER = "koho@example.jp"


def _dsn_for(recipient: str, status: str = "5.1.1", diagnostic: str = "550 5.1.1 User unknown") -> bytes:
    template = (BOUNCES / "postfix-userunknown.eml").read_bytes()
    return (
        template.replace(b"nobody-here@example.co.jp", recipient.encode())
        .replace(b"Status: 5.1.1", f"Status: {status}".encode())
        .replace(b"smtp; 550 5.1.1", f"smtp; {diagnostic} ".encode())
    )


async def test_dsn_is_stored_suppressed_reported_and_published(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    event_sink: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """A DSN to a valid VERP address: 250 after storing, suppression, Japanese report, one delivery.bounced."""
    sink = await event_sink("delivery.bounced")
    app = create_app(make_settings(NotifierSettings))
    campaign = uuid.uuid4()
    async with running_app(app) as client:
        await publish(
            CampaignAccepted(
                campaign_id=campaign, pass_id=1, recipient_count=3, sender_email=SENDER, subject="年末のご案内"
            )
        )
        delivered = DeliverySucceeded(
            campaign_id=campaign, delivery_id=17, recipient="Gone@example.co.jp", smtp_code=250, row_number=12
        )
        await publish(delivered)
        await wait_until(lambda: notifier_db.fetchval("SELECT count(*) FROM deliveries"))
        await wait_until(lambda: notifier_db.fetchval("SELECT count(*) FROM campaigns"))
        verp = bounce_address(SECRET, DOMAIN, campaign, 17)
        code, _ = await smtp_send(listener_port(app), verp, _dsn_for("gone@example.co.jp"))
        assert code == 250
        assert await notifier_db.fetchval("SELECT count(*) FROM bounces WHERE delivery_id = 17 AND is_bounce") == 1
        again, _ = await smtp_send(listener_port(app), verp, _dsn_for("gone@example.co.jp"))  # the remote MTA retries
        assert again == 250
        events = await sink.wait_for(1)
        mails = await smtp_server.wait_for(1, rcpt=SENDER)
        checked = await client.post("/internal/suppressions/check", json={"addresses": ["Gone@Example.co.jp"]})
        metrics = (await client.get("/metrics")).text
        assert checked.json() == {"suppressed": {"Gone@Example.co.jp": "userunknown"}}
        await asyncio.sleep(0.5)  # room for a wrong second event or mail to show up
    assert len(sink.events) == 1
    event = events[0]
    assert isinstance(event, DeliveryBounced)
    assert (event.campaign_id, event.delivery_id, event.recipient) == (campaign, 17, "gone@example.co.jp")
    assert (event.reason, event.hard, event.status) == ("userunknown", True, "5.1.1")
    assert await notifier_db.fetchval("SELECT count(*) FROM bounces") == 2
    assert len(smtp_server.to(SENDER)) == 1
    report = mails[0].message()
    assert "配信エラー" in report["Subject"]
    assert "年末のご案内" in report["Subject"]
    text = report.get_content()
    assert "gone@example.co.jp" in text
    assert "宛先のメールアドレスが存在しません" in text
    assert "送信後に返送（バウンス）" in text
    assert "CSVの行: 12 行目" in text
    assert 'isseimail_notifier_bounces_total{outcome="bounce"}' in metrics
    assert 'isseimail_notifier_bounced_recipients_total{kind="hard",reason="userunknown",service="notifier"}' in (
        metrics
    )
    assert 'isseimail_notifier_system_mails_total{kind="delivery.failures",outcome="sent"}' in metrics
    assert "User unknown" in text


async def test_hostile_messages_are_refused_or_recorded_as_not_a_bounce(
    make_settings: Callable[..., Any], event_sink: Callable[..., Any], notifier_db: asyncpg.Connection
) -> None:
    """Oversized mail gets 552, junk and auto-replies are stored as not-a-bounce, and the listener stays up."""
    sink = await event_sink("delivery.bounced")
    app = create_app(make_settings(NotifierSettings, bounce_max_bytes=256 * 1024, bounce_max_recipients=2))
    campaign = uuid.uuid4()
    verp = bounce_address(SECRET, DOMAIN, campaign, 9)
    async with running_app(app) as client:
        with pytest.raises(aiosmtplib.SMTPDataError) as too_big:
            await smtp_send(listener_port(app), verp, b"Subject: big\r\n\r\n" + (b"x" * 78 + b"\r\n") * 6000)
        assert too_big.value.code == 552
        for raw in (
            (BOUNCES / "vacation-autoreply.eml").read_bytes(),
            (BOUNCES / "dsn-no-recipient.eml").read_bytes(),
            b"\x00\xff garbage without headers \xfe",
            b"Content-Type: multipart/report; boundary=\r\n\r\n--\r\n",
        ):
            code, _ = await smtp_send(listener_port(app), verp, raw)
            assert code == 250
        # more recipients than allowed in one message
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener_port(app), timeout=10)
        await smtp.connect()
        await smtp.mail("")
        for delivery in (1, 2):
            await smtp.rcpt(bounce_address(SECRET, DOMAIN, campaign, delivery))
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as third:
            await smtp.rcpt(bounce_address(SECRET, DOMAIN, campaign, 3))
        assert third.value.code == 452
        smtp.close()
        assert (await client.get("/readyz")).status_code == 200
    rows = await notifier_db.fetch("SELECT is_bounce, reason, note FROM bounces ORDER BY id")
    assert [r["is_bounce"] for r in rows] == [False] * 4
    assert rows[0]["reason"] == "vacation"
    assert all(r["note"] for r in rows)
    assert await notifier_db.fetchval("SELECT count(*) FROM suppressions") == 0
    assert sink.events == []


async def _deliveries(conn: asyncpg.Connection, expected: int) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM deliveries") == expected)


async def test_forgeries_change_nothing_and_a_bounce_fails_only_its_own_delivery(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    event_sink: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """Forged tags, other secrets/domains and unknown local parts get 550 and change nothing; a genuine VERP
    address used with a DSN naming someone else fails only the delivery's own address."""
    sink = await event_sink("delivery.bounced")
    app = create_app(make_settings(NotifierSettings))
    campaign = uuid.uuid4()
    genuine = bounce_address(SECRET, DOMAIN, campaign, 5)
    forged = [
        genuine.replace(genuine.split("-")[2], "6"),  # another delivery under the same MAC
        bounce_address(b"another-secret", DOMAIN, campaign, 5),
        bounce_address(SECRET, "evil.example", campaign, 5),
        f"postmaster@{DOMAIN}",
        f"anything@{DOMAIN}",
    ]
    async with running_app(app) as client:
        for rcpt in forged:
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await smtp_send(listener_port(app), rcpt, _dsn_for("victim@example.jp"))
            assert refused.value.code == 550
        await asyncio.sleep(0.3)
        for table in ("bounces", "suppressions", "failures", "outbox"):
            assert await notifier_db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        assert sink.events == []

        mallory = DeliverySucceeded(campaign_id=campaign, delivery_id=5, recipient="mallory@example.jp", smtp_code=250)
        await publish(mallory)
        await wait_until(lambda: _deliveries(notifier_db, 1))
        code, _ = await smtp_send(listener_port(app), genuine, _dsn_for("ceo@example.jp"))
        assert code == 250
        events = await sink.wait_for(1)
        checked = await client.post(
            "/internal/suppressions/check", json={"addresses": ["ceo@example.jp", "mallory@example.jp"]}
        )
        # a genuine VERP address of a delivery the notifier has not heard of: recorded, suppresses nothing
        unknown = bounce_address(SECRET, DOMAIN, campaign, 6)
        assert (await smtp_send(listener_port(app), unknown, _dsn_for("cfo@example.jp")))[0] == 250
        await sink.wait_for(2)
    assert checked.json() == {"suppressed": {"mallory@example.jp": "userunknown"}}
    assert isinstance(events[0], DeliveryBounced)
    assert events[0].recipient == "mallory@example.jp"
    assert await notifier_db.fetchval("SELECT count(*) FROM suppressions") == 1
    assert await notifier_db.fetchval("SELECT delivered_to FROM bounces WHERE delivery_id = 5") == "mallory@example.jp"
    assert smtp_server.messages == []  # no campaign.accepted: nobody to report to yet


async def test_hundred_concurrent_senders_lose_nothing(
    make_settings: Callable[..., Any],
    publish: Callable[..., Any],
    event_sink: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """100 MTAs bouncing at once: every one gets 250, every bounce is stored and published once."""
    sink = await event_sink("delivery.bounced")
    app = create_app(make_settings(NotifierSettings))
    campaign = uuid.uuid4()
    async with running_app(app):
        for n in range(1, 101):
            await publish(
                DeliverySucceeded(campaign_id=campaign, delivery_id=n, recipient=f"user{n}@example.jp", smtp_code=250)
            )
        await wait_until(lambda: _deliveries(notifier_db, 100), timeout=30)
        port = listener_port(app)
        answers = await asyncio.gather(
            *(
                smtp_send(port, bounce_address(SECRET, DOMAIN, campaign, n), _dsn_for(f"user{n}@example.jp"))
                for n in range(1, 101)
            )
        )
        events = await sink.wait_for(100, timeout=60)
    assert [code for code, _ in answers] == [250] * 100
    assert await notifier_db.fetchval("SELECT count(DISTINCT delivery_id) FROM bounces") == 100
    assert sorted(e.delivery_id for e in events if isinstance(e, DeliveryBounced)) == list(range(1, 101))
    assert await notifier_db.fetchval("SELECT count(*) FROM suppressions WHERE active") == 100


def test_dsn_builder_substitutes_the_recipient() -> None:
    """The DSN builder used above really carries the address it is asked for (guards the other tests)."""
    raw = _dsn_for("someone@example.jp")
    assert b"someone@example.jp" in raw
    assert b"nobody-here" not in raw

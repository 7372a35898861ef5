"""Failure reports and the completion mail, driven by dispatcher events on the real broker."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import CampaignCompleted, CampaignPaused, DeliveryFailed, envelope_for
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer

from .conftest import wait_until

SENDER = "koho@example.jp"


def _failed(campaign: uuid.UUID, n: int, **overrides: Any) -> DeliveryFailed:
    values: dict[str, Any] = {
        "campaign_id": campaign,
        "delivery_id": n,
        "recipient": f"user{n}@example.jp",
        "row_number": n + 1,
        "sender_email": SENDER,
        "subject": "年末年始休業のお知らせ",
        "smtp_code": 550,
        "enhanced_status": "5.1.1",
        "diagnostic": f"550 5.1.1 <user{n}@example.jp>: Recipient address rejected: User unknown",
    }
    values.update(overrides)
    return DeliveryFailed(**values)


async def test_smtp_failure_is_reported_at_once_then_gathered_into_a_digest(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """The first 550 is reported at once in Japanese and suppressed; the next ones come as one digest."""
    app = create_app(make_settings(NotifierSettings, failure_digest_seconds=2))
    campaign = uuid.uuid4()
    async with running_app(app) as client:
        first = envelope_for(_failed(campaign, 1))
        await publish(_failed(campaign, 1), first)
        await publish(_failed(campaign, 1), first)  # delivered twice
        mails = await smtp_server.wait_for(1, rcpt=SENDER)
        for n in range(2, 7):
            diagnostic = "452 4.2.2 Mailbox full" if n == 2 else f"550 5.1.1 user{n} unknown"
            await publish(
                _failed(campaign, n, enhanced_status=None, smtp_code=int(diagnostic[:3]), diagnostic=diagnostic)
            )
        mails = await smtp_server.wait_for(2, rcpt=SENDER, timeout=20)
        checked = await client.post(
            "/internal/suppressions/check", json={"addresses": ["user1@example.jp", "user2@example.jp"]}
        )
        await asyncio.sleep(0.5)
    assert len(smtp_server.to(SENDER)) == 2
    single = mails[0].message()
    assert single["Subject"] == "【一斉メール】配信エラーのお知らせ：年末年始休業のお知らせ"
    text = single.get_content()
    assert "送信先: user1@example.jp" in text
    assert "CSVの行: 2 行目" in text
    assert "宛先のメールアドレスが存在しません" in text
    assert "送信時に相手先サーバが拒否" in text
    assert "Recipient address rejected: User unknown" in text
    digest = mails[1].message()
    assert "（5 件）" in digest["Subject"]
    digest_text = digest.get_content()
    for n in range(2, 7):
        assert f"user{n}@example.jp" in digest_text
    assert "相手先のメールボックスの容量が一杯になっています" in digest_text
    # a hard failure suppresses at once; a single temporary "mailbox full" does not
    assert checked.json() == {"suppressed": {"user1@example.jp": "userunknown"}}
    assert await notifier_db.fetchval("SELECT count(*) FROM failures WHERE reported_by IS NULL") == 0


async def test_completion_mail_counts_and_csv(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """campaign.completed mails the counts; more than 50 failures are listed in full in a CSV, once."""
    app = create_app(make_settings(NotifierSettings))  # 10-minute digest window: failures wait
    campaign = uuid.uuid4()
    async with running_app(app):
        for n in range(1, 61):
            await publish(_failed(campaign, n))
        await wait_until(lambda: _count(notifier_db, 60), timeout=30)
        start = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.UTC)
        completed = CampaignCompleted(
            campaign_id=campaign,
            sender_email=SENDER,
            subject="年末年始休業のお知らせ",
            total=100,
            sent=40,
            failed=60,
            started_at=start,
            finished_at=start + dt.timedelta(minutes=3),
        )
        envelope = envelope_for(completed)
        await publish(completed, envelope)
        await publish(completed, envelope)
        await wait_until(lambda: _completion_sent(notifier_db), timeout=20)
        await asyncio.sleep(0.5)
    to_sender = [m.message() for m in smtp_server.to(SENDER)]
    completions = [m for m in to_sender if "送信完了" in m["Subject"]]
    assert len(completions) == 1
    assert len(to_sender) == 2  # the first failure's own report, then the completion mail
    msg = completions[0]
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    for line in (
        "送信先: 100 件（送信者ご本人への控えを含みます）",
        "配信成功: 40 件",
        "配信失敗: 60 件",
        "返送（バウンス）: 0 件",
    ):
        assert line in text
    assert "送信開始: 2026-11-28 10:00:00（Asia/Tokyo）" in text
    assert "送信終了: 2026-11-28 10:03:00（Asia/Tokyo）" in text
    assert "user50@example.jp" in text
    assert "user51@example.jp" not in text
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["failures.csv"]
    assert attachments[0].get_content_type() == "text/csv"
    raw = attachments[0].get_payload(decode=True)
    assert isinstance(raw, bytes)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 61
    assert rows[1][:2] == ["2", "user1@example.jp"]
    assert await notifier_db.fetchval("SELECT count(*) FROM failures WHERE reported_by IS NULL") == 0


async def _count(conn: asyncpg.Connection, expected: int) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM failures") == expected)


async def _completion_sent(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval("SELECT count(*) FROM mail_log WHERE kind = 'campaign.completed' AND sent_at IS NOT NULL")
    )


async def test_paused_campaign_tells_the_sender_why(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """campaign.paused mails the sender the counts, the failure rate and the failed addresses, once."""
    app = create_app(make_settings(NotifierSettings))
    campaign = uuid.uuid4()
    async with running_app(app):
        for n in (1, 2, 3):
            await publish(_failed(campaign, n))
        await wait_until(lambda: _count(notifier_db, 3))
        paused = CampaignPaused(
            campaign_id=campaign,
            sender_email=SENDER,
            subject="年末年始休業のお知らせ",
            total=200,
            sent=10,
            failed=30,
            failure_rate=0.75,
        )
        await publish(paused)
        mails = await smtp_server.wait_for(2, rcpt=SENDER)
    stopped = [m.message() for m in mails if "送信停止" in m.message()["Subject"]]
    assert len(stopped) == 1
    text = stopped[0].get_content()
    assert "配信失敗: 30 件（75%）" in text
    assert "未送信: 160 件" in text
    assert "user3@example.jp" in text


async def test_completion_overtaking_its_failures_waits_for_them(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """campaign.completed handled before its delivery.failed events: the mail waits and lists them all;
    a failure that never comes holds it back only for the configured wait."""
    app = create_app(make_settings(NotifierSettings, completion_wait_seconds=3))
    early, lossy = uuid.uuid4(), uuid.uuid4()
    start = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.UTC)

    def completed(campaign: uuid.UUID, subject: str, failed: int) -> CampaignCompleted:
        return CampaignCompleted(
            campaign_id=campaign,
            sender_email=SENDER,
            subject=subject,
            total=10,
            sent=10 - failed,
            failed=failed,
            started_at=start,
            finished_at=start + dt.timedelta(minutes=1),
        )

    async with running_app(app):
        await publish(completed(early, "早着", 2))
        await publish(completed(lossy, "欠落", 3))
        await wait_until(lambda: notifier_db.fetchval("SELECT count(*) = 2 FROM pending_completions"))
        assert [m for m in smtp_server.to(SENDER) if "送信完了" in m.message()["Subject"]] == []
        for n in (1, 2):
            await publish(_failed(early, n, subject="早着"))
            await publish(_failed(lossy, n, subject="欠落"))
        await wait_until(lambda: _completions(smtp_server, "早着"), timeout=10)
        assert not _completions_now(smtp_server, "欠落")  # still waiting for its third failure
        await wait_until(lambda: _completions(smtp_server, "欠落"), timeout=20)
        await asyncio.sleep(0.3)
    for subject in ("早着", "欠落"):
        mails = _completions_now(smtp_server, subject)
        assert len(mails) == 1
        text = mails[0].get_content()
        assert "user1@example.jp" in text
        assert "user2@example.jp" in text


def _completions_now(smtp_server: CaptureServer, subject: str) -> list[Any]:
    return [
        m.message()
        for m in smtp_server.to(SENDER)
        if "送信完了" in m.message()["Subject"] and subject in m.message()["Subject"]
    ]


async def _completions(smtp_server: CaptureServer, subject: str) -> bool:
    return bool(_completions_now(smtp_server, subject))

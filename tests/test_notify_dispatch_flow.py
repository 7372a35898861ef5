"""Issue 7's "done when" across the real dispatcher and notifier: a 550 while sending and a DSN arriving
later each reach the sender as a Japanese report and put the address on the suppression list; the
completion mail counts right; a forged bounce changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import pytest

from isseimail_dispatcher.app import create_app as dispatcher_app
from isseimail_dispatcher.app import create_worker_app
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.bounce_listener import BounceListener
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.app import runtime_of
from isseimail_shared.events import CampaignAccepted, envelope_for
from isseimail_shared.messaging import Broker
from isseimail_testing.process import running_app
from isseimail_testing.smtp import Captured, CaptureServer
from isseimail_testing.snapshot import SENDER, SnapshotPeer, make_recipients

BOUNCES = Path(__file__).resolve().parent.parent / "services" / "notifier" / "tests" / "bounces"


def system_mails(smtp_server: CaptureServer, kind: str) -> list[Captured]:
    """System mails to the sender whose subject names `kind` (the sender also gets the campaign copy)."""
    return [m for m in smtp_server.to(SENDER) if kind in str(m.message()["Subject"])]


async def wait_mails(smtp_server: CaptureServer, kind: str, count: int = 1, timeout: float = 60) -> list[Captured]:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(found := system_mails(smtp_server, kind)) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no {kind} mail")
        await asyncio.sleep(0.1)
    return found


async def wait_value(conn: asyncpg.Connection, sql: str, expected: object, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await conn.fetchval(sql) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(sql)
        await asyncio.sleep(0.1)


async def bounce(port: int, rcpt: str, recipient: str) -> int:
    raw = (BOUNCES / "postfix-userunknown.eml").read_bytes().replace(b"nobody-here@example.co.jp", recipient.encode())
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await client.connect()
    try:
        await client.mail("")
        await client.rcpt(rcpt)
        return (await client.data(raw)).code
    finally:
        client.close()


async def test_smtp_failure_and_later_dsn_reach_the_sender_and_the_suppression_list(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    snapshot_peer: SnapshotPeer,
    broker: Broker,
    database_url: str,
) -> None:
    """550 for user3 while sending, a DSN for user5 afterwards: two Japanese reports, two suppressions."""
    smtp_server.handler.fail_recipient(
        "user3@example.jp", 550, "5.1.1 <user3@example.jp>: Recipient address rejected: User unknown"
    )
    dispatcher = make_settings(DispatcherSettings, composer_url=snapshot_peer.url)
    notifier = notifier_app(make_settings(NotifierSettings, failure_digest_seconds=1))
    db = await asyncpg.connect(database_url, server_settings={"search_path": "notifier"})
    try:
        async with (
            running_app(notifier) as nc,
            running_app(dispatcher_app(dispatcher)),
            running_app(create_worker_app(dispatcher)),
        ):
            campaign_id = snapshot_peer.add(make_recipients(10), subject="年末年始休業のお知らせ")
            await broker.publish_event(
                envelope_for(
                    CampaignAccepted(
                        campaign_id=campaign_id,
                        pass_id=1,
                        recipient_count=10,
                        sender_email=SENDER,
                        subject="年末年始休業のお知らせ",
                    )
                )
            )
            completion = (await wait_mails(smtp_server, "送信完了"))[0].message()
            smtp_report = (await wait_mails(smtp_server, "配信エラー"))[0].message()
            # everything the dispatcher delivered is known to the notifier before a bounce comes back
            await wait_value(db, "SELECT coalesce(sum(cardinality(delivery_ids)), 0) FROM delivered_groups", 10)

            listener = runtime_of(notifier).registry.get(BounceListener)
            user5 = next(m for m in smtp_server.messages if m.rcpt_tos == ["user5@example.jp"])
            verp = user5.mail_from
            forged = verp.replace(verp.split("-")[2], str(int(verp.split("-")[2]) + 1), 1)
            with pytest.raises(aiosmtplib.SMTPRecipientRefused):
                await bounce(listener.port, forged, "user6@example.jp")
            assert await bounce(listener.port, verp, "user5@example.jp") == 250
            bounce_report = (await wait_mails(smtp_server, "配信エラー", count=2))[1].message()
            checked = await nc.post(
                "/internal/suppressions/check",
                json={"addresses": [f"user{i}@example.jp" for i in range(1, 11)]},
            )
    finally:
        await db.close()

    completion_text = completion.get_content()
    # 10 recipients and the sender's own copy; user3 refused
    for line in ("送信先: 11 件", "配信成功: 10 件", "配信失敗: 1 件", "返送（バウンス）: 0 件", "user3@example.jp"):
        assert line in completion_text
    smtp_text = smtp_report.get_content()
    assert "user3@example.jp" in smtp_text
    assert "CSVの行: 3 行目" in smtp_text
    assert "宛先のメールアドレスが存在しません" in smtp_text
    assert "送信時に相手先サーバが拒否" in smtp_text
    assert "Recipient address rejected: User unknown" in smtp_text
    bounce_text = bounce_report.get_content()
    assert "user5@example.jp" in bounce_text
    assert "送信後に返送（バウンス）" in bounce_text
    assert "user6@example.jp" not in bounce_text
    assert checked.json() == {"suppressed": {"user3@example.jp": "userunknown", "user5@example.jp": "userunknown"}}

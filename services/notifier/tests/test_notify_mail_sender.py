"""The system-mail sender: retries a refused mail with backoff, gives up after the configured attempts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import asyncpg

from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import ApplicationRejected
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer

from .conftest import wait_until


def _rejected(application_id: int, email: str) -> ApplicationRejected:
    return ApplicationRejected(
        application_id=application_id,
        applicant_name="鈴木 一郎",
        applicant_email=email,
        use_date=dt.date(2026, 12, 2),
        reason="重複した申請です。",
        admin_email="admin@example.jp",
    )


async def test_refused_mails_are_retried_then_sent_or_left_for_an_operator(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """451 twice then success: sent once after three attempts; a 550 for good: parked after the last attempt."""
    smtp_server.handler.fail_next("DATA", 451, "4.3.0 try later", times=2)
    smtp_server.handler.fail_recipient("nobody@example.jp", 550, "5.1.1 no such user")
    app = create_app(make_settings(NotifierSettings, mail_retry_seconds=0.1, mail_max_attempts=3))
    async with running_app(app):
        await publish(_rejected(1, "ichiro@example.jp"))
        await smtp_server.wait_for(1, rcpt="ichiro@example.jp")
        await publish(_rejected(2, "nobody@example.jp"))
        sql = "SELECT attempts >= 3 FROM mail_log WHERE recipient = 'nobody@example.jp'"
        await wait_until(lambda: notifier_db.fetchval(sql))
        await asyncio.sleep(0.5)
    assert len(smtp_server.to("ichiro@example.jp")) == 1
    rows = {
        r["recipient"]: r
        for r in await notifier_db.fetch(
            "SELECT recipient, attempts, sent_at, last_error, next_try_at = 'infinity' AS parked FROM mail_log"
        )
    }
    sent = rows["ichiro@example.jp"]
    assert sent["attempts"] == 3
    assert sent["sent_at"] is not None
    parked = rows["nobody@example.jp"]
    assert parked["attempts"] == 3
    assert parked["sent_at"] is None
    assert parked["parked"]
    assert "no such user" in parked["last_error"]
    assert smtp_server.to("nobody@example.jp") == []

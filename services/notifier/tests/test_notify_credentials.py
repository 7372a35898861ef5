"""Credential and rejection mails: sent once per issuance, password never stored in clear."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import asyncpg
from cryptography.fernet import Fernet

from isseimail_notifier.app import create_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.events import ApplicationRejected, PassIssued
from isseimail_testing.fixtures import CREDENTIALS_KEY
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer

PASSWORD = "Kx7mP2qR9t"


def _issued(**overrides: Any) -> PassIssued:
    values: dict[str, Any] = {
        "pass_id": 41,
        "application_id": 7,
        "user_id": "123456",
        "use_date": dt.date(2026, 11, 30),
        "applicant_name": "山田 太郎",
        "applicant_email": "taro@example.jp",
        "admin_email": "admin@example.jp",
        "encrypted_password": Fernet(CREDENTIALS_KEY.encode()).encrypt(PASSWORD.encode()).decode(),
        "login_url": "https://isseimail.example.jp/login",
    }
    values.update(overrides)
    return PassIssued(**values)


async def test_credentials_mailed_once_and_never_stored_in_clear(
    make_settings: Callable[..., Any],
    smtp_server: CaptureServer,
    publish: Callable[..., Any],
    notifier_db: asyncpg.Connection,
) -> None:
    """pass.issued mails the exact credential lines to both, once, even when delivered twice or re-emitted;
    a password encrypted with another key mails nothing; a rejection reaches the applicant."""
    app = create_app(make_settings(NotifierSettings, delivery_limit=1))
    foreign = Fernet(Fernet.generate_key()).encrypt(b"whatever12").decode()
    async with running_app(app):
        await publish(_issued(pass_id=99, applicant_email="other@example.jp", encrypted_password=foreign))
        event = _issued()
        envelope = await publish(event)
        await publish(event, envelope)  # the same delivery again
        await publish(event)  # the same pass re-published under a new event id
        await publish(
            ApplicationRejected(
                application_id=8,
                applicant_name="佐藤 花子",
                applicant_email="hanako@example.jp",
                use_date=dt.date(2026, 12, 1),
                reason="利用目的が不明確です。\n詳細を記入してください。",
                admin_email="admin@example.jp",
            )
        )
        await smtp_server.wait_for(1, rcpt="taro@example.jp")
        await smtp_server.wait_for(1, rcpt="admin@example.jp")
        rejections = await smtp_server.wait_for(1, rcpt="hanako@example.jp")
        await asyncio.sleep(0.5)
        bodies = await notifier_db.fetch("SELECT body, encrypted FROM mail_log WHERE kind = 'pass.issued'")
    assert len(smtp_server.to("taro@example.jp")) == 1
    assert len(smtp_server.to("admin@example.jp")) == 1
    assert smtp_server.to("other@example.jp") == []
    for captured in smtp_server.to("taro@example.jp") + smtp_server.to("admin@example.jp"):
        msg = captured.message()
        assert msg["Subject"] == "【一斉メール】1DayPass 発行のお知らせ"
        text = msg.get_content()
        lines = text.splitlines()
        assert "ユーザーID は [123456] です。" in lines
        assert f"パスワード は [{PASSWORD}] です。" in lines
        assert "https://isseimail.example.jp/login" in text
        assert "2026年11月30日" in text
        assert "無効になります" in text
    assert len(bodies) == 2
    for row in bodies:
        assert row["encrypted"]
        assert PASSWORD not in row["body"]
        assert "123456" not in row["body"]
    rejection = rejections[0].message()
    assert rejection["Subject"] == "【一斉メール】1DayPass 申請却下のお知らせ"
    assert "利用目的が不明確です。 詳細を記入してください。" in rejection.get_content()


def test_credential_mail_links_the_rules_and_states_the_day() -> None:
    """The credential mail links the rules page and says the pass holds for the day of use in Japan time only."""
    from isseimail_notifier.texts import credentials

    for for_admin in (False, True):
        text = credentials(
            _issued(), PASSWORD, for_admin=for_admin, rules_url="https://isseimail.example.jp/rules"
        ).body
        assert "1DayPass のルールをお読みください: https://isseimail.example.jp/rules" in text
        assert "日本時間の0時から24時まで" in text
        assert "再発行は不可" in text

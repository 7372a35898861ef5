"""The first flow across services: pass-service creates an administrator, the notifier mails them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from isseimail_notifier.app import create_app as notifier_app
from isseimail_notifier.settings import NotifierSettings
from isseimail_pass.app import create_app as pass_app
from isseimail_pass.settings import PassSettings
from isseimail_testing.process import running_app
from isseimail_testing.smtp import CaptureServer


async def test_admin_created_event_reaches_notifier_and_mails_once(
    make_settings: Callable[..., Any], smtp_server: CaptureServer
) -> None:
    """Creating the first administrator publishes admin.created; the notifier mails them exactly once."""
    notifier = notifier_app(make_settings(NotifierSettings))
    pass_settings = make_settings(PassSettings, admin_email="Boss@Example.JP", admin_password="correct horse battery")
    async with running_app(notifier) as nc, running_app(pass_app(pass_settings)) as pc:
        assert (await nc.get("/readyz")).status_code == 200
        assert (await pc.get("/readyz")).status_code == 200
        mails = await smtp_server.wait_for(1, rcpt="boss@example.jp")
    # a second start with the same settings finds the administrator and creates nothing
    async with (
        running_app(notifier_app(make_settings(NotifierSettings))),
        running_app(pass_app(pass_settings)),
    ):
        pass
    assert len(smtp_server.to("boss@example.jp")) == 1
    msg = mails[0].message()
    assert msg["Subject"] == "【一斉メール】管理者アカウント作成のお知らせ"
    assert "boss@example.jp" in msg.get_content()

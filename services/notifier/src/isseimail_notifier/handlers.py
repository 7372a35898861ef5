"""Event handlers: each turns one event into system mails, queued in the event's transaction."""

from __future__ import annotations

from isseimail_shared.db import Conn
from isseimail_shared.events import AdminCreated, Envelope

from isseimail_notifier.mail_queue import mail_domain, queue_mail
from isseimail_notifier.settings import NotifierSettings


def admin_created(settings: NotifierSettings):  # type: ignore[no-untyped-def]
    async def handle(conn: Conn, envelope: Envelope, event: AdminCreated) -> None:
        body = (
            "isseimail 一斉メールの管理者アカウントが作成されました。\n\n"
            f"管理者メールアドレス: {event.email}\n"
            f"管理画面: {settings.public_url}/admin\n\n"
            "お心当たりのない場合は、システム管理者にご連絡ください。\n"
        )
        await queue_mail(
            conn,
            kind="admin.created",
            cause=str(envelope.event_id),
            recipient=str(event.email),
            subject="【一斉メール】管理者アカウント作成のお知らせ",
            body=body,
            domain=mail_domain(str(settings.system_from)),
        )

    return handle

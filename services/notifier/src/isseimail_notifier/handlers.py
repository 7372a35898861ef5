"""Event handlers: each turns one event into system mails, queued in the event's transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from isseimail_notifier import texts
from isseimail_notifier.mail_queue import mail_domain, queue_mail
from isseimail_notifier.secrets_box import CredentialsBox
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.db import Conn
from isseimail_shared.events import AdminCreated, ApplicationRejected, Envelope, PassIssued


def admin_created(settings: NotifierSettings) -> Callable[[Conn, Envelope, AdminCreated], Awaitable[None]]:
    async def handle(conn: Conn, envelope: Envelope, event: AdminCreated) -> None:
        text = texts.admin_created(event, console_url=f"{settings.public_url}/admin")
        await queue_mail(
            conn,
            kind="admin.created",
            cause=str(envelope.event_id),
            recipient=str(event.email),
            subject=text.subject,
            body=text.body,
            domain=mail_domain(str(settings.system_from)),
        )

    return handle


def pass_issued(
    settings: NotifierSettings, box: CredentialsBox
) -> Callable[[Conn, Envelope, PassIssued], Awaitable[None]]:
    """Credentials to the applicant and the administrator; the stored bodies are encrypted."""

    async def handle(conn: Conn, envelope: Envelope, event: PassIssued) -> None:
        # A token that does not decrypt raises: the event is retried and then dead-lettered, so an
        # operator sees it; a credential mail without its password would be worse than none.
        password = box.decrypt(event.encrypted_password)
        pass_id = str(event.pass_id)  # one issuance = one pass: a re-published event mails nothing new
        for recipient, for_admin in ((str(event.applicant_email), False), (str(event.admin_email), True)):
            text = texts.credentials(event, password, for_admin=for_admin, rules_url=f"{settings.public_url}/rules")
            await queue_mail(
                conn,
                kind="pass.issued",
                cause=f"pass:{pass_id}",
                recipient=recipient.lower(),
                subject=text.subject,
                body=box.encrypt(text.body),
                domain=mail_domain(str(settings.system_from)),
                encrypted=True,
            )

    return handle


def application_rejected(
    settings: NotifierSettings,
) -> Callable[[Conn, Envelope, ApplicationRejected], Awaitable[None]]:
    async def handle(conn: Conn, envelope: Envelope, event: ApplicationRejected) -> None:
        text = texts.rejection(event)
        await queue_mail(
            conn,
            kind="application.rejected",
            cause=f"application:{event.application_id}",
            recipient=str(event.applicant_email).lower(),
            subject=text.subject,
            body=text.body,
            domain=mail_domain(str(settings.system_from)),
        )

    return handle

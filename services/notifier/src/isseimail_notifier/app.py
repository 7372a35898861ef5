"""The notifier app: its spec (schema, migrations, consumers, the mail sender) and its routes."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from isseimail_notifier import handlers, routes
from isseimail_notifier.mail_queue import MailSender
from isseimail_notifier.secrets_box import CredentialsBox
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.events import AdminCreated, ApplicationRejected, PassIssued
from isseimail_shared.runtime import ConsumerSpec, Runtime, ServiceSpec

EVENTS_QUEUE = "notifier.events"


def _settings(runtime: Runtime) -> NotifierSettings:
    assert isinstance(runtime.settings, NotifierSettings)
    return runtime.settings


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    settings = _settings(runtime)
    box = CredentialsBox(settings.credentials_key)
    return [
        runtime.event_consumer(
            EVENTS_QUEUE,
            {
                AdminCreated: handlers.admin_created(settings),
                PassIssued: handlers.pass_issued(settings, box),
                ApplicationRejected: handlers.application_rejected(settings),
            },
        )
    ]


async def mail_sender(runtime: Runtime) -> None:
    s = _settings(runtime)
    box = CredentialsBox(s.credentials_key)
    await MailSender(runtime.pool, s.smtp_relay, str(s.system_from), s.mail_retry_seconds, box).run()


SPEC = ServiceSpec(
    name="notifier",
    schema="notifier",
    migrations="isseimail_notifier.migrations",
    consumers=consumers,
    background=[mail_sender],
)


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    app = create_service_app(SPEC, settings or NotifierSettings(), [routes.router])
    routes.install_errors(app)
    return app

"""The notifier app: its spec (schema, migrations, consumers, the mail sender) and its routes."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.events import AdminCreated
from isseimail_shared.runtime import ConsumerSpec, Runtime, ServiceSpec

from isseimail_notifier import handlers
from isseimail_notifier.mail_queue import MailSender
from isseimail_notifier.settings import NotifierSettings

EVENTS_QUEUE = "notifier.events"


def _settings(runtime: Runtime) -> NotifierSettings:
    assert isinstance(runtime.settings, NotifierSettings)
    return runtime.settings


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    settings = _settings(runtime)
    return [runtime.event_consumer(EVENTS_QUEUE, {AdminCreated: handlers.admin_created(settings)})]


async def mail_sender(runtime: Runtime) -> None:
    s = _settings(runtime)
    await MailSender(runtime.pool, s.smtp_relay, str(s.system_from), s.mail_retry_seconds).run()


SPEC = ServiceSpec(
    name="notifier",
    schema="notifier",
    migrations="isseimail_notifier.migrations",
    consumers=consumers,
    background=[mail_sender],
)


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or NotifierSettings())

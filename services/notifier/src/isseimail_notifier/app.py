"""The notifier app: its spec (schema, migrations, consumers, mail sender, digests, bounce listener) and routes."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from isseimail_notifier import complaint_rates, completion, handlers, report_handlers, routes, unsubscribe_routes
from isseimail_notifier.bounce_listener import BounceHandler, BounceListener
from isseimail_notifier.failures import DigestLoop
from isseimail_notifier.mail_queue import MailSender
from isseimail_notifier.secrets_box import CredentialsBox
from isseimail_notifier.settings import NotifierSettings
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.events import (
    AdminCreated,
    ApplicationRejected,
    CampaignAccepted,
    CampaignCompleted,
    CampaignPaused,
    DeliveriesSettled,
    DeliveryFailed,
    DeliverySucceeded,
    PassIssued,
)
from isseimail_shared.runtime import ConsumerSpec, Runtime, ServiceSpec

EVENTS_QUEUE = "notifier.events"


def consumers(runtime: Runtime[NotifierSettings]) -> Sequence[ConsumerSpec]:
    settings = runtime.settings
    box = CredentialsBox(settings.credentials_key)
    return [
        runtime.event_consumer(
            EVENTS_QUEUE,
            {
                AdminCreated: handlers.admin_created(settings),
                PassIssued: handlers.pass_issued(settings, box),
                ApplicationRejected: handlers.application_rejected(settings),
                CampaignAccepted: report_handlers.campaign_accepted(settings),
                DeliveryFailed: report_handlers.delivery_failed(settings),
                CampaignCompleted: report_handlers.campaign_completed(settings),
                CampaignPaused: report_handlers.campaign_paused(settings),
                DeliverySucceeded: report_handlers.delivery_succeeded(settings),
                DeliveriesSettled: report_handlers.deliveries_settled(settings),
            },
        )
    ]


async def mail_sender(runtime: Runtime[NotifierSettings]) -> None:
    s = runtime.settings
    box = CredentialsBox(s.credentials_key)
    sender = MailSender(runtime.pool, s.smtp_relay, str(s.system_from), s.mail_retry_seconds, box, s.mail_max_attempts)
    await sender.run()


async def failure_digests(runtime: Runtime[NotifierSettings]) -> None:
    s = runtime.settings
    jobs = [completion.flush_pending(s)]
    await DigestLoop(
        runtime.pool, report_handlers.policy_of(s), jobs, max_poll=min(10.0, s.completion_wait_seconds / 3)
    ).run()


async def complaint_rate_gauges(runtime: Runtime[NotifierSettings]) -> None:
    await complaint_rates.run(runtime.pool)


async def start_bounce_listener(runtime: Runtime[NotifierSettings]) -> None:
    s = runtime.settings
    handler = BounceHandler(
        runtime.pool,
        secret=s.verp_secret.get_secret_value().encode(),
        domain=s.bounce_domain,
        max_recipients=s.bounce_max_recipients,
        policy=report_handlers.policy_of(s),
        soft_limit=s.soft_bounce_limit,
    )
    listener = BounceListener(handler, s.bounce_listen_host, s.bounce_listen_port, s.bounce_max_bytes)
    await listener.start()
    # its /readyz check is named "bounce_listener"
    runtime.registry.register(BounceListener, listener, close=listener.stop, ping=listener.is_serving)


SPEC = ServiceSpec(
    name="notifier",
    schema="notifier",
    migrations="isseimail_notifier.migrations",
    consumers=consumers,
    background=[mail_sender, failure_digests, complaint_rate_gauges],
    on_start=[start_bounce_listener],
)


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    return create_service_app(
        SPEC, settings or NotifierSettings(), [routes.router, routes.campaigns_router, unsubscribe_routes.router]
    )

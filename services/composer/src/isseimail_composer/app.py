"""The composer app: its spec (schema, migrations, the pass.consumed consumer) and its routes."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from isseimail_composer import routes
from isseimail_composer.attachment_safety import AttachmentGuard
from isseimail_composer.clamd_client import ClamdClient
from isseimail_composer.deliverability import api as domains_api
from isseimail_composer.deliverability.lifecycle import open_readiness
from isseimail_composer.freeze import on_pass_consumed
from isseimail_composer.settings import ComposerSettings
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.clients.list_validator import ListsClient
from isseimail_shared.events import PassConsumed
from isseimail_shared.runtime import ConsumerSpec, Runtime, ServiceSpec

EVENTS_QUEUE = "composer.events"


async def open_lists(runtime: Runtime[ComposerSettings]) -> None:
    s = runtime.settings
    client = ListsClient(s.list_validator_url, s.internal_tokens, timeout=s.upstream_timeout_seconds)
    runtime.registry.register(ListsClient, client, close=client.close)


async def open_guard(runtime: Runtime[ComposerSettings]) -> None:
    s = runtime.settings
    clamd = ClamdClient(s.clamd_url, s.clamd_timeout_seconds) if s.clamd_url else None
    runtime.registry.register(AttachmentGuard, AttachmentGuard(frozenset(s.pdf_allow), clamd))


def consumers(runtime: Runtime[ComposerSettings]) -> Sequence[ConsumerSpec]:
    parts = runtime.registry
    handler = on_pass_consumed(parts.get(ListsClient), parts.get(AttachmentGuard))
    return [runtime.event_consumer(EVENTS_QUEUE, {PassConsumed: handler})]


SPEC = ServiceSpec(
    name="composer",
    schema="composer",
    migrations="isseimail_composer.migrations",
    consumers=consumers,
    on_start=[open_lists, open_guard, open_readiness],
)


def create_app(settings: ComposerSettings | None = None) -> FastAPI:
    routers = [routes.router, routes.policy_router, domains_api.router]
    return create_service_app(SPEC, settings or ComposerSettings(), routers)

"""The composer app: its spec (schema, migrations, the pass.consumed consumer) and its routes."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from isseimail_composer import routes
from isseimail_composer.attachment_safety import AttachmentGuard
from isseimail_composer.clamd_client import ClamdClient
from isseimail_composer.deliverability import api as domains_api
from isseimail_composer.deliverability.lifecycle import close_readiness, open_readiness
from isseimail_composer.freeze import on_pass_consumed
from isseimail_composer.settings import ComposerSettings
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.clients.list_validator import ListsClient
from isseimail_shared.events import PassConsumed
from isseimail_shared.runtime import ConsumerSpec, Runtime, ServiceSpec

EVENTS_QUEUE = "composer.events"


def _settings(runtime: Runtime) -> ComposerSettings:
    assert isinstance(runtime.settings, ComposerSettings)
    return runtime.settings


async def open_lists(runtime: Runtime) -> None:
    s = _settings(runtime)
    runtime.state["lists"] = ListsClient(s.list_validator_url, s.internal_tokens, timeout=s.upstream_timeout_seconds)


async def open_guard(runtime: Runtime) -> None:
    s = _settings(runtime)
    clamd = ClamdClient(s.clamd_url, s.clamd_timeout_seconds) if s.clamd_url else None
    runtime.state["guard"] = AttachmentGuard(frozenset(s.pdf_allow), clamd)


async def close_lists(runtime: Runtime) -> None:
    client = runtime.state.pop("lists", None)
    if client is not None:
        await client.close()


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    return [
        runtime.event_consumer(
            EVENTS_QUEUE, {PassConsumed: on_pass_consumed(runtime.state["lists"], runtime.state["guard"])}
        )
    ]


SPEC = ServiceSpec(
    name="composer",
    schema="composer",
    migrations="isseimail_composer.migrations",
    consumers=consumers,
    on_start=[open_lists, open_guard, open_readiness],
    on_stop=[close_readiness, close_lists],
)


def create_app(settings: ComposerSettings | None = None) -> FastAPI:
    routers = [routes.router, routes.policy_router, domains_api.router]
    return create_service_app(SPEC, settings or ComposerSettings(), routers)

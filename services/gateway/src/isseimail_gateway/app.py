"""The gateway app: the web UI and the JSON API in front of the other services; intranet only."""

from __future__ import annotations

from fastapi import FastAPI

from isseimail_gateway import openapi, web
from isseimail_gateway.api import ROUTERS
from isseimail_gateway.api.lists import ListLimit
from isseimail_gateway.api_csrf import ApiSameOrigin
from isseimail_gateway.intranet import IntranetOnly
from isseimail_gateway.settings import GatewaySettings
from isseimail_gateway.upstream import Upstreams
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.runtime import Runtime, ServiceSpec


async def open_upstreams(runtime: Runtime[GatewaySettings]) -> None:
    upstreams = Upstreams(runtime.settings)
    runtime.registry.register(Upstreams, upstreams, close=upstreams.close)
    runtime.registry.register(ListLimit, ListLimit())


SPEC = ServiceSpec(
    name="gateway",
    schema="gateway",
    migrations=None,
    uses_database=False,  # sessions live in signed cookies; the gateway owns no table
    uses_broker=False,  # it changes state only by calling the services that own it
    internal_api=False,  # the one service users reach: guarded by the intranet allow-list and sessions
    on_start=[open_upstreams],
)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    app = create_service_app(
        SPEC, settings, [*ROUTERS, web.router], openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs"
    )
    openapi.install(app)
    app.add_middleware(ApiSameOrigin)  # inside the intranet guard: only intranet requests get this far
    app.add_middleware(IntranetOnly, allowed=settings.intranet_cidrs, trusted=settings.trusted_proxies)
    web.install(app)  # after the guard, so its security headers wrap every answer, the guard's 403 included
    return app

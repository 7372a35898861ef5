"""The gateway app: its spec (schema, migrations, consumers) and its routes."""

from __future__ import annotations

from fastapi import FastAPI
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.runtime import ServiceSpec

from isseimail_gateway.settings import GatewaySettings

SPEC = ServiceSpec(
    name="gateway",
    schema="gateway",
    migrations=None,
    uses_database=False,
    uses_broker=False,
)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or GatewaySettings())

"""The dispatcher app: its spec (schema, migrations, consumers) and its routes."""

from __future__ import annotations

from fastapi import FastAPI
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.runtime import ServiceSpec

from isseimail_dispatcher.settings import DispatcherSettings

SPEC = ServiceSpec(
    name="dispatcher",
    schema="dispatcher",
    migrations="isseimail_dispatcher.migrations",
    uses_database=True,
    uses_broker=True,
)


def create_app(settings: DispatcherSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or DispatcherSettings())

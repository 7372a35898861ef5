"""The composer app: its spec (schema, migrations, consumers) and its routes."""

from __future__ import annotations

from fastapi import FastAPI
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.runtime import ServiceSpec

from isseimail_composer.settings import ComposerSettings

SPEC = ServiceSpec(
    name="composer",
    schema="composer",
    migrations="isseimail_composer.migrations",
    uses_database=True,
    uses_broker=True,
)


def create_app(settings: ComposerSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ComposerSettings())

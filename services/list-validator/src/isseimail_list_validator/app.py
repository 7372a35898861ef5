"""The list-validator app: its spec (schema, migrations, consumers) and its routes."""

from __future__ import annotations

from fastapi import FastAPI
from isseimail_shared.app import create_app as create_service_app
from isseimail_shared.runtime import ServiceSpec

from isseimail_list_validator.settings import ListValidatorSettings

SPEC = ServiceSpec(
    name="list-validator",
    schema="list_validator",
    migrations="isseimail_list_validator.migrations",
    uses_database=True,
    uses_broker=True,
)


def create_app(settings: ListValidatorSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ListValidatorSettings())

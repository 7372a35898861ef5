"""list-validator settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

from isseimail_shared.settings import ServiceSettings
from pydantic import AliasChoices, Field


class ListValidatorSettings(ServiceSettings):
    port: int = Field(
        default=8082,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_LIST_VALIDATOR_PORT", "port"),
        description="HTTP port of the list-validator.",
    )

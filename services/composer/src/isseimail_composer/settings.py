"""composer settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from isseimail_shared.settings import ServiceSettings


class ComposerSettings(ServiceSettings):
    port: int = Field(
        default=8083,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_COMPOSER_PORT", "port"),
        description="HTTP port of the composer.",
    )
    sender_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma list of domains a sender address may use (empty = any), so no one sends as another domain.",
    )
    list_validator_url: str = Field(
        default="http://127.0.0.1:8082", description="list-validator base URL (list status and recipient rows)."
    )
    upstream_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Timeout of the composer's calls to the list-validator."
    )

    @field_validator("sender_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(v).strip().lower().lstrip("@") for v in value if str(v).strip()]
        return value

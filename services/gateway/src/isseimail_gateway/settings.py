"""gateway settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

from isseimail_shared.settings import ServiceSettings
from pydantic import AliasChoices, Field


class GatewaySettings(ServiceSettings):
    port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_GATEWAY_PORT", "port"),
        description="HTTP port of the gateway.",
    )

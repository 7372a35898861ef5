"""pass-service settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

from isseimail_shared.settings import ServiceSettings
from pydantic import AliasChoices, Field, SecretStr


class PassSettings(ServiceSettings):
    port: int = Field(
        default=8081,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_PASS_PORT", "port"),
        description="HTTP port of the pass-service.",
    )
    admin_email: str | None = Field(
        default=None,
        description="With ISSEIMAIL_ADMIN_PASSWORD: the first administrator, created if none exists.",
    )
    admin_password: SecretStr | None = Field(default=None, description="The first administrator's password.")

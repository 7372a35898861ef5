"""notifier settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

from isseimail_shared.settings import ServiceSettings
from pydantic import AliasChoices, EmailStr, Field


class NotifierSettings(ServiceSettings):
    port: int = Field(
        default=8085,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_NOTIFIER_PORT", "port"),
        description="HTTP port of the notifier.",
    )
    system_from: EmailStr = Field(
        default="isseimail@localhost.localdomain", description="From address of every system mail."
    )
    public_url: str = Field(default="http://127.0.0.1:8080", description="The gateway's URL as users reach it.")
    mail_retry_seconds: float = Field(default=30.0, gt=0, description="Wait before retrying a system mail.")

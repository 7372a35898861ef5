"""gateway settings: the shared ISSEIMAIL_* settings plus the gateway's own."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from isseimail_shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_GATEWAY_PORT", "port"),
        description="HTTP port of the gateway (the only service users reach).",
    )
    pass_url: str = Field(default="http://127.0.0.1:8081", description="pass-service base URL.")
    list_validator_url: str = Field(default="http://127.0.0.1:8082", description="list-validator base URL.")
    composer_url: str = Field(default="http://127.0.0.1:8083", description="composer base URL.")
    dispatcher_url: str = Field(default="http://127.0.0.1:8084", description="dispatcher base URL.")
    notifier_url: str = Field(default="http://127.0.0.1:8085", description="notifier base URL.")
    session_secret: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)),
        description="Key that signs session cookies; set it (same on every replica) or sessions end on restart.",
    )
    cookie_secure: bool = Field(default=False, description="Mark cookies Secure (set when served over HTTPS).")
    trusted_proxies: Annotated[list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode] = Field(
        default_factory=list,
        description="Proxies whose X-Forwarded-For is believed (comma list of CIDRs); empty = none.",
    )
    upstream_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of calls to the services.")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [ipaddress.ip_network(v.strip(), strict=False) for v in value.split(",") if v.strip()]
        return value

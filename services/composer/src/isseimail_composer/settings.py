"""composer settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from isseimail_composer.clamd_client import ClamdAddress
from isseimail_composer.pdf_safety import RULES
from isseimail_shared.settings import DnsQuerySettings, OutboundMailSettings, ServiceSettings


class ComposerSettings(ServiceSettings, OutboundMailSettings, DnsQuerySettings):
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
    clamd_url: str | None = Field(
        default=None,
        description="clamd to scan every attachment with (INSTREAM): tcp://host:3310 or unix:///path;"
        " empty = no virus scanning. When set, a file clamd cannot scan is refused, never let through.",
    )
    clamd_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Deadline of one attachment's clamd scan (connect, stream, verdict)."
    )
    attachments_required: bool = Field(
        default=True,
        description="At least one PDF attachment per mail, as the operating manual marks it (必須);"
        " false allows mails without attachments (the compose screen says which).",
    )
    pdf_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma list of PDF active-content rules to allow (default none): "
        + ", ".join(RULES)
        + ". Structure problems (unreadable, damaged, truncated, no pages, password, too many objects)"
        " are always refused.",
    )

    @field_validator("clamd_url", mode="before")
    @classmethod
    def _check_clamd_url(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None
            ClamdAddress.parse(value)  # raises ValueError with the accepted forms
            return value.strip()
        return value

    @field_validator("pdf_allow", mode="before")
    @classmethod
    def _split_rules(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            rules = [str(v).strip().lower() for v in value if str(v).strip()]
            unknown = [r for r in rules if r not in RULES]
            if unknown:
                raise ValueError(f"unknown PDF rule(s) {', '.join(unknown)}; known: {', '.join(RULES)}")
            return rules
        return value

    # Domain readiness (deliverability/): what the dispatcher signs with and where mail leaves from.
    dispatcher_url: str = Field(default="http://127.0.0.1:8084", description="dispatcher base URL.")
    sending_ips: Annotated[list[ipaddress.IPv4Address | ipaddress.IPv6Address], NoDecode] = Field(
        default_factory=list,
        description="Comma list of the public addresses mail leaves from (SPF and, in mx mode, PTR checks).",
    )
    bounce_mx_host: str | None = Field(
        default=None,
        description="Host the bounce domain's MX should name (the notifier's listener); default ISSEIMAIL_HELO_NAME.",
    )
    readiness_cache_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="Seconds a sender domain's readiness report (SPF, DKIM, DMARC) is reused before asking DNS again.",
    )

    @field_validator("sending_ips", mode="before")
    @classmethod
    def _split_ips(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("sender_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(v).strip().lower().lstrip("@") for v in value if str(v).strip()]
        return value

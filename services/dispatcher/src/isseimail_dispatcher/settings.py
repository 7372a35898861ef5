"""dispatcher settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from isseimail_shared.settings import ServiceSettings


class DomainLimit(BaseModel):
    """Politeness towards one destination domain, for the whole fleet of workers."""

    connections: int = Field(ge=1, le=1000)
    per_minute: int = Field(ge=1, le=10_000_000)


DEFAULT_OVERRIDES = {
    "gmail.com": DomainLimit(connections=10, per_minute=3000),
    "yahoo.co.jp": DomainLimit(connections=5, per_minute=1200),
    "outlook.com": DomainLimit(connections=10, per_minute=3000),
    "hotmail.com": DomainLimit(connections=10, per_minute=3000),
}


class DispatcherSettings(ServiceSettings):
    public_url: str = Field(
        default="http://127.0.0.1:8080",
        description="The gateway's URL as users reach it: links in system mails, and, when it is https://, the "
        "RFC 8058 one-click unsubscribe URL <PUBLIC_URL>/unsubscribe/<token> in every campaign mail (http:// = "
        "the mailto: unsubscribe on the bounce domain only).",
    )
    port: int = Field(
        default=8084,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_DISPATCHER_PORT", "port"),
        description="HTTP port of the dispatcher.",
    )
    worker_port: int = Field(
        default=8086,
        ge=1,
        le=65535,
        description="HTTP port of a dispatcher worker (health, readiness and metrics only).",
    )
    composer_url: str = Field(default="http://127.0.0.1:8083", description="composer base URL (campaign snapshots).")
    batch_size: int = Field(default=200, ge=1, le=10_000, description="Recipients per dispatch batch.")
    worker_prefetch: int = Field(default=4, ge=1, le=1000, description="Batches a worker process works on at once.")
    delivery_mode: Literal["relay", "mx"] = Field(
        default="relay", description="relay: every message to ISSEIMAIL_SMTP_RELAY; mx: straight to the MX hosts."
    )
    mx_port: int = Field(default=25, ge=1, le=65535, description="SMTP port of MX hosts in mx mode (tests: loopback).")
    domain_connections: int = Field(
        default=5, ge=1, le=1000, description="Default fleet-wide concurrent connections per recipient domain."
    )
    domain_per_minute: int = Field(
        default=600, ge=1, le=10_000_000, description="Default fleet-wide messages per minute per recipient domain."
    )
    domain_limits: Annotated[dict[str, DomainLimit], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_OVERRIDES),
        description='JSON object of per-domain overrides: {"gmail.com": {"connections": 10, "per_minute": 3000}}.',
    )
    retry_max_age: float = Field(
        default=24 * 3600, gt=0, description="Seconds a recipient is retried after temporary failures before failing."
    )
    retry_base_seconds: float = Field(
        default=60.0, gt=0, le=86_400, description="First retry delay; doubles per attempt, with jitter, up to 1 h."
    )
    pause_on_failure_rate: float = Field(
        default=0.10, ge=0, le=1, description="Hard-failure rate that pauses a campaign (after the first 200)."
    )
    pause_min_attempts: int = Field(
        default=200, ge=1, description="Recipients finished before the failure rate can pause a campaign."
    )
    smtp_timeout: float = Field(default=60.0, gt=0, le=600, description="Seconds to wait for any SMTP reply.")
    helo_name: str = Field(default="isseimail.localhost", description="Name the workers give in EHLO.")
    dkim_selector: str | None = Field(default=None, description="DKIM selector; signing is on with a key.")
    dkim_domain: str | None = Field(default=None, description="DKIM d= domain (default: the sender's domain).")
    dkim_private_key: SecretStr | None = Field(
        default=None,
        description="DKIM private key (PEM) for signing, used for a domain with no active key made by "
        "`isseimail-dispatcher dkim`.",
    )
    dkim_key_secret: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts the DKIM keys the dispatcher generates (`isseimail-dispatcher dkim`); "
        "the same on the dispatcher and every worker. Make one with "
        '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.',
    )
    claim_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A worker's claim on a batch and its connection leases lapse this long after it stops renewing.",
    )
    scheduler_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often due retries and unpublished batches are looked at."
    )

    @field_validator("domain_limits", mode="before")
    @classmethod
    def _parse_limits(cls, value: object) -> object:
        if isinstance(value, str):
            parsed = json.loads(value) if value.strip() else {}
            if not isinstance(parsed, dict):
                raise ValueError("ISSEIMAIL_DOMAIN_LIMITS must be a JSON object")
            return {**DEFAULT_OVERRIDES, **{k.lower(): v for k, v in parsed.items()}}
        return value

    def limit_for(self, domain: str) -> DomainLimit:
        found = self.domain_limits.get(domain.lower())
        return found or DomainLimit(connections=self.domain_connections, per_minute=self.domain_per_minute)

    def dkim_enabled(self) -> bool:
        return bool(self.dkim_selector and self.dkim_private_key)

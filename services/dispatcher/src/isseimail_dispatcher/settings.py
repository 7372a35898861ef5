"""dispatcher settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from isseimail_dispatcher.adaptive import Adaptation
from isseimail_dispatcher.shaping import DomainLimit, LimitOverride, Shaping, load_presets
from isseimail_shared.settings import OutboundMailSettings, PublicUrlSettings, ServiceSettings

__all__ = ["DispatcherSettings", "DomainLimit", "LimitOverride"]


class DispatcherSettings(ServiceSettings, OutboundMailSettings, PublicUrlSettings):
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
    notifier_url: str = Field(
        default="http://127.0.0.1:8085",
        description="notifier base URL: the workers re-check the suppression list at send time (per batch and "
        "about every second), so an unsubscribe or hard bounce after 一斉送信 stops later mail to that address.",
    )
    batch_size: int = Field(default=200, ge=1, le=10_000, description="Recipients per dispatch batch.")
    worker_prefetch: int = Field(default=4, ge=1, le=1000, description="Batches a worker process works on at once.")
    outcome_flush_count: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Outcomes one connection lets wait uncommitted (a worker process commits all its connections' "
        "together); a SIGKILL resends at most this many per connection.",
    )
    outcome_flush_seconds: float = Field(
        default=1.0, gt=0, le=5, description="Longest an outcome waits before its worker process commits it."
    )
    mx_port: int = Field(default=25, ge=1, le=65535, description="SMTP port of MX hosts in mx mode (tests: loopback).")
    domain_connections: int = Field(
        default=5, ge=1, le=1000, description="Default fleet-wide concurrent connections per recipient domain."
    )
    domain_per_minute: int = Field(
        default=600, ge=1, le=10_000_000, description="Default fleet-wide messages per minute per recipient domain."
    )
    domain_limits: Annotated[dict[str, LimitOverride], NoDecode] = Field(
        default_factory=dict,
        description="JSON object of per-domain overrides of the provider presets, any subset of connections, "
        'per_minute, messages_per_connection: {"gmail.com": {"per_minute": 1000}}.',
    )
    shaping_presets_file: Path | None = Field(
        default=None,
        description="TOML file of per-provider limits replacing the built-in shaping_presets.toml (same format).",
    )
    relay_per_minute: int = Field(
        default=60_000,
        ge=1,
        le=10_000_000,
        description="Relay mode: fleet-wide messages per minute through the SMTP relay (set what it accepts; the "
        "default, 1,000/s, caps nothing a relay of 2 MB mails reaches). The relay's own rate-limit replies "
        "(421/450/451, 4.7.x) halve this rate (adaptive, like a domain's), not the recipient domain's.",
    )
    relay_messages_per_connection: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Relay mode: messages sent on one relay connection before it is closed and a new one opened "
        "(unset: no limit). In mx mode the destination host's messages_per_connection (presets, "
        "ISSEIMAIL_DOMAIN_LIMITS) applies instead.",
    )
    throttle_window_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="After a rate-limit reply a domain's lowered rate holds this long, then rises one step per "
        "window without further rate-limit replies.",
    )
    throttle_decrease_factor: float = Field(
        default=0.5, gt=0, lt=1, description="A rate-limit reply multiplies the domain's rate by this."
    )
    throttle_increase_fraction: float = Field(
        default=0.1, gt=0, le=1, description="Each quiet window adds this fraction of the configured rate back."
    )
    throttle_min_per_minute: float = Field(
        default=6.0, gt=0, le=10_000_000, description="A throttled domain's rate never goes below this (per minute)."
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
        '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`. '
        "To change it: `NEW,OLD` (comma-separated; the first encrypts, all decrypt), run "
        "`isseimail-dispatcher dkim reencrypt`, then set `NEW` alone.",
    )
    dkim_retired_retention_days: float = Field(
        default=7.0,
        gt=0,
        le=3650,
        description="Days a retired DKIM key stays listed (its TXT record published, so mail already sent still "
        "verifies); `isseimail-dispatcher dkim prune` then deletes it and prints the record to remove.",
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

    _shaping: Shaping | None = PrivateAttr(default=None)

    @field_validator("domain_limits", mode="before")
    @classmethod
    def _parse_limits(cls, value: object) -> object:
        if isinstance(value, str):
            parsed = json.loads(value) if value.strip() else {}
            if not isinstance(parsed, dict):
                raise ValueError("ISSEIMAIL_DOMAIN_LIMITS must be a JSON object")
            value = parsed
        if isinstance(value, dict):
            return {str(k).strip().lower(): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _load_shaping(self) -> DispatcherSettings:
        # At start-up, so that a broken presets file stops the service with the file and field named.
        default = DomainLimit(connections=self.domain_connections, per_minute=self.domain_per_minute)
        self._shaping = Shaping(load_presets(self.shaping_presets_file), self.domain_limits, default)
        return self

    @property
    def shaping(self) -> Shaping:
        assert self._shaping is not None
        return self._shaping

    def limit_for(self, domain: str, mx_hosts: tuple[str, ...] = ()) -> DomainLimit:
        return self.shaping.limit_for(domain, mx_hosts)

    def adaptation(self) -> Adaptation:
        return Adaptation(
            window=self.throttle_window_seconds,
            factor=self.throttle_decrease_factor,
            floor=self.throttle_min_per_minute,
            increase_fraction=self.throttle_increase_fraction,
        )

    def dkim_enabled(self) -> bool:
        return bool(self.dkim_selector and self.dkim_private_key)

"""list-validator settings: the shared ISSEIMAIL_* settings plus this service's own."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from isseimail_shared.settings import DnsQuerySettings, ServiceSettings

DEFAULT_LEGACY_CARRIER_DOMAINS = (
    "docomo.ne.jp",
    "ezweb.ne.jp",
    "au.com",
    "softbank.ne.jp",
    "i.softbank.jp",
    "disney.ne.jp",
    "vodafone.ne.jp",
    "pdx.ne.jp",
    "willcom.com",
    "ymobile.ne.jp",
    "y-mobile.ne.jp",
    "emobile.ne.jp",
)


class ListValidatorSettings(ServiceSettings, DnsQuerySettings):
    port: int = Field(
        default=8082,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("ISSEIMAIL_LIST_VALIDATOR_PORT", "port"),
        description="HTTP port of the list-validator.",
    )
    list_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest CSV accepted, in bytes (an upload past 1 MB is spooled to a temporary file in /tmp "
        "while it is read: size that volume for the uploads a replica receives at once).",
    )
    list_max_rows: int = Field(
        default=50_000,
        ge=1,
        le=1_000_000,
        description="Most recipient rows in one CSV (up to 1,000,000: an upload is read and stored in constant "
        "memory; ~80 MB of CSV at 1,000,000 rows).",
    )
    list_max_columns: int = Field(
        default=50, ge=5, le=1000, description="Most columns in a CSV row (trailing empty ones included)."
    )
    list_max_cell_chars: int = Field(
        default=200, ge=10, le=10_000, description="Longest company/department/contact cell, in characters."
    )
    smtputf8: bool = Field(
        default=False, description="Accept non-ASCII local parts (needs SMTPUTF8 on every hop); off by default."
    )
    legacy_carrier_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_LEGACY_CARRIER_DOMAINS),
        description="Comma list of carrier domains (and their subdomains) where 'a..b@' / 'a.@' local parts "
        "are accepted as legacy addresses and quoted on the wire.",
    )
    dns_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries per DNS query (SERVFAIL, timeout) before 'could not be verified'."
    )
    unverified_policy: Literal["block", "allow"] = Field(
        default="block",
        description="What an address that could not be verified (DNS timeout/SERVFAIL, SMTP 4xx, suppression "
        "list unavailable) does to the list: block it (default) or let it through.",
    )
    domain_check_concurrency: int = Field(
        default=200, ge=1, le=5000, description="Domain checks one worker runs at once."
    )
    result_flush_seconds: float = Field(
        default=0.05, gt=0, le=5, description="How long domain results are gathered before one database write."
    )
    redispatch_after_seconds: float = Field(
        default=120.0, gt=0, le=86_400, description="Republish domain checks of a list still validating after this."
    )
    list_upload_concurrency: int = Field(
        default=2, ge=1, le=64, description="Uploads one replica parses and stores at once (each holds ~20 MB of rows)."
    )
    list_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Lists (addresses, names) are deleted this many days after upload."
    )
    notifier_url: str = Field(
        default="http://127.0.0.1:8085", description="notifier base URL (suppression list checks)."
    )
    suppression_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Timeout of the suppression-list check at the notifier."
    )
    smtp_probe: bool = Field(
        default=False, description="Probe each address with RCPT TO at its domain's MX (never DATA); off by default."
    )
    smtp_probe_port: int = Field(default=25, ge=1, le=65535, description="Port of the MX hosts the probe talks to.")
    smtp_probe_connections_per_domain: int = Field(
        default=2, ge=1, le=50, description="Simultaneous probe connections to one domain."
    )
    smtp_probe_timeout_seconds: float = Field(default=15.0, gt=0, le=300, description="Timeout of one probe step.")
    smtp_probe_helo: str = Field(default="isseimail.localhost", description="Name the probe announces in EHLO.")

    @field_validator("legacy_carrier_domains", mode="before")
    @classmethod
    def _parse_domains(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [str(v).strip().lower().rstrip(".") for v in value if str(v).strip()]
        return value

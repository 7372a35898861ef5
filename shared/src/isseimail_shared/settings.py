"""Settings base: every service reads its configuration from ISSEIMAIL_* environment variables."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_INTRANET_CIDRS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)


class SmtpRelay(BaseModel):
    """Where outgoing mail goes: smtp://, smtps:// (implicit TLS) or smtp+starttls://, optional user:password."""

    host: str
    port: int = Field(ge=1, le=65535)
    security: Literal["none", "tls", "starttls"] = "none"
    username: str | None = None
    password: SecretStr | None = None

    @classmethod
    def parse(cls, url: str) -> SmtpRelay:
        parts = urlsplit(url.strip())
        schemes = {"smtp": ("none", 25), "smtps": ("tls", 465), "smtp+starttls": ("starttls", 587)}
        if parts.scheme not in schemes:
            raise ValueError(f"unsupported SMTP relay scheme {parts.scheme!r}: use smtp, smtps or smtp+starttls")
        if not parts.hostname:
            raise ValueError("SMTP relay URL has no host")
        security, default_port = schemes[parts.scheme]
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=SecretStr(unquote(parts.password)) if parts.password else None,
        )

    def __str__(self) -> str:
        # Never print the password: this is what logs and error messages show.
        scheme = {"none": "smtp", "tls": "smtps", "starttls": "smtp+starttls"}[self.security]
        user = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_nameserver(item: str) -> tuple[str, int]:
    """'ip' or 'ip:port' or '[v6]:port' -> (ip, port); the port defaults to 53."""
    item = item.strip()
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif item.count(":") == 1:
        host, port_text = item.split(":")
        port = int(port_text)
    else:
        host, port = item, 53
    ipaddress.ip_address(host)  # raises ValueError for a host name: resolvers need addresses
    if not 1 <= port <= 65535:
        raise ValueError(f"nameserver port out of range: {item}")
    return host, port


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ServiceSettings(BaseSettings):
    """The settings every service shares. Services subclass it and add their own fields."""

    model_config = SettingsConfigDict(env_prefix="ISSEIMAIL_", extra="ignore", frozen=True)

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/isseimail"),
        description="PostgreSQL URL; every service uses its own schema in this database.",
    )
    amqp_url: SecretStr = Field(default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"), description="RabbitMQ URL.")
    smtp_relay: Annotated[SmtpRelay, NoDecode] = Field(
        default=SmtpRelay(host="127.0.0.1", port=1025),
        description="Relay for outgoing mail: smtp://, smtps:// or smtp+starttls://, optional user:password@.",
    )
    dns_nameservers: Annotated[list[tuple[str, int]], NoDecode] = Field(
        default_factory=list, description="Comma list of ip or ip:port; empty means the system resolver."
    )
    intranet_cidrs: Annotated[list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode] = Field(
        default_factory=lambda: [ipaddress.ip_network(c) for c in DEFAULT_INTRANET_CIDRS],
        description="Client networks allowed to use the web UI and API.",
    )
    timezone: str = Field(default="Asia/Tokyo", description="Time zone that defines a pass's day of use.")
    bounce_domain: str = Field(
        default="bounce.isseimail.localhost",
        description="Domain of the VERP envelope senders; its MX must point at the notifier's bounce listener.",
    )
    verp_secret: SecretStr = Field(
        default=SecretStr("change-me-verp-secret"),
        description="HMAC key that authenticates VERP bounce addresses (dispatcher and notifier share it).",
    )
    internal_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Tokens of service-to-service calls (comma list): the first is sent, every one accepted, so a "
        "new token goes first and the old one is removed later; empty = internal APIs refuse every call.",
    )
    log_level: str = Field(default="INFO", description="Python log level name.")
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    db_pool_size: int = Field(default=10, ge=1, le=200, description="Connections per service process.")
    prefetch: int = Field(default=20, ge=1, le=10_000, description="Unacked messages per consumer.")
    delivery_limit: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Redeliveries of a failing message before it goes to the DLQ. With "
        "ISSEIMAIL_RABBITMQ_MANAGEMENT_URL a policy that a restart updates; else a queue argument fixed when the "
        "queue was declared. The same on every service.",
    )
    rabbitmq_management_url: SecretStr | None = Field(
        default=None,
        description="RabbitMQ management API (http://user:password@host:15672/, rabbitmq_management plugin). Set: "
        "each service applies the delivery limit as the policy isseimail-delivery-limit on its vhost at start; "
        "unset: as the x-delivery-limit queue argument.",
    )
    queue_wait_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How long a process that consumes a queue another service owns (a dispatcher worker) waits "
        "at start for the queue to be declared before giving up.",
    )
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60, description="Outbox relay's poll interval.")
    shutdown_grace_seconds: float = Field(
        default=20.0, gt=0, le=600, description="How long SIGTERM waits for in-flight work."
    )

    @field_validator("smtp_relay", mode="before")
    @classmethod
    def _parse_relay(cls, value: object) -> object:
        return SmtpRelay.parse(value) if isinstance(value, str) else value

    @field_validator("internal_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("dns_nameservers", mode="before")
    @classmethod
    def _parse_nameservers(cls, value: object) -> object:
        value = _split_commas(value)
        if isinstance(value, list):
            return [parse_nameserver(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("intranet_cidrs", mode="before")
    @classmethod
    def _parse_cidrs(cls, value: object) -> object:
        value = _split_commas(value)
        if isinstance(value, list):
            return [ipaddress.ip_network(v, strict=False) if isinstance(v, str) else v for v in value]
        return value

    def nameserver_strings(self) -> list[str]:
        """The form aiodns wants: 'ip:port' (IPv6 as '[ip]:port')."""
        return [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.dns_nameservers]


# Settings that more than one service reads under the same name. Each is defined once here and mixed into the
# services that need it, so that two definitions of one ISSEIMAIL_* variable cannot drift apart.


class OutboundMailSettings(BaseModel):
    """How campaign mail leaves: the dispatcher sends that way, the composer checks the sender domain's DNS for it."""

    delivery_mode: Literal["relay", "mx"] = Field(
        default="relay", description="relay: every message to ISSEIMAIL_SMTP_RELAY; mx: straight to the MX hosts."
    )
    helo_name: str = Field(
        default="isseimail.localhost", description="Name the workers give in EHLO (and the PTR name in mx mode)."
    )


class DnsQuerySettings(BaseModel):
    """DNS look-ups through ISSEIMAIL_DNS_NAMESERVERS (list validator: recipient domains; composer: sender domains)."""

    dns_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="Initial timeout of a DNS query; c-ares adapts it to the server's latency, backs off on retries.",
    )


class PublicUrlSettings(BaseModel):
    """The gateway's address as users reach it (notifier: links in system mails; dispatcher: one-click unsubscribe)."""

    public_url: str = Field(
        default="http://127.0.0.1:8080",
        description="The gateway's URL as users reach it: links in system mails, and, when it is https://, the "
        "RFC 8058 one-click unsubscribe URL <PUBLIC_URL>/unsubscribe/<token> in every campaign mail (http:// = "
        "the mailto: unsubscribe on the bounce domain only).",
    )

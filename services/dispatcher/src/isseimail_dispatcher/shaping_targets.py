"""Whose limits a message obeys, by delivery mode.

mx mode: every message goes to one of the recipient domain's MX hosts. Rate-limit replies (421/450/451,
4.7.x) come from that domain's servers and lower the domain's rate; messages per connection is the limit of
the destination host (the domain's own, or its provider preset's when the MX hosts match).

relay mode: every message goes to the one SMTP relay, which queues it and delivers it itself; every reply
we get is the relay's own. So a rate-limit reply lowers the relay's rate (bucket `relay:HOST:PORT`, which
every message also takes a token from), never the recipient domain's, and messages per connection is the
relay's (ISSEIMAIL_RELAY_MESSAGES_PER_CONNECTION). Per-domain rates and connections still apply on top.
"""

from __future__ import annotations

from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_dispatcher.shaping import DomainLimit

RELAY_PREFIX = "relay:"
RELAY_CONNECTIONS = 1000  # the relay's bucket row limits the rate only; leases stay per recipient domain


def relay_bucket(settings: DispatcherSettings) -> tuple[str, DomainLimit] | None:
    """(bucket key, limit) of the relay in relay mode; None in mx mode."""
    if settings.delivery_mode != "relay":
        return None
    relay = settings.smtp_relay
    limit = DomainLimit(
        connections=RELAY_CONNECTIONS,
        per_minute=settings.relay_per_minute,
        messages_per_connection=settings.relay_messages_per_connection,
    )
    return f"{RELAY_PREFIX}{relay.host.lower()}:{relay.port}", limit


def buckets(settings: DispatcherSettings, domain: str, limit: DomainLimit) -> list[tuple[str, DomainLimit]]:
    """The token buckets a message to `domain` takes one token from: the domain's, and the relay's in relay mode."""
    relay = relay_bucket(settings)
    return [(domain, limit), relay] if relay else [(domain, limit)]


def throttle_target(settings: DispatcherSettings, domain: str, mx_hosts: tuple[str, ...]) -> tuple[str, DomainLimit]:
    """The bucket a rate-limit reply lowers: the relay's in relay mode, the recipient domain's in mx mode."""
    return relay_bucket(settings) or (domain, settings.limit_for(domain, mx_hosts))


def messages_per_connection(settings: DispatcherSettings, limit: DomainLimit) -> int | None:
    """Messages on one connection before reconnecting: the relay's in relay mode, the destination's in mx mode."""
    if settings.delivery_mode == "relay":
        return settings.relay_messages_per_connection
    return limit.messages_per_connection


def ceiling(settings: DispatcherSettings, key: str) -> float:
    """The configured rate of a bucket key (a domain, or the relay)."""
    relay = relay_bucket(settings)
    if relay is not None and key == relay[0]:
        return float(relay[1].per_minute)
    return float(settings.limit_for(key).per_minute)


def metric_label(key: str, domain_label: str) -> str:
    return "relay" if key.startswith(RELAY_PREFIX) else domain_label

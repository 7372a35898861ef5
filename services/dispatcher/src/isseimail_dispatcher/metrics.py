"""The dispatcher's Prometheus metrics (names prefixed isseimail_dispatch_)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "isseimail_dispatch_messages_total",
    "Recipients handled by the SMTP workers, by outcome (sent, retry, failed), reply class (2xx, 4xx, 5xx, net)"
    " and domain (those with their own limits; 'other' for the rest).",
    ["outcome", "reply_class", "domain"],
)
BYTES_SENT = Counter("isseimail_dispatch_bytes_sent_total", "Message bytes accepted by the next hop.")
TRANSACTION_SECONDS = Histogram(
    "isseimail_dispatch_smtp_transaction_seconds",
    "One SMTP transaction (MAIL to the end of DATA).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ACTIVE_CONNECTIONS = Gauge(
    "isseimail_dispatch_active_connections",
    "SMTP connections in use by this worker, per domain with its own limits ('other' for the rest).",
    ["domain"],
)
BATCHES_IN_FLIGHT = Gauge("isseimail_dispatch_batches_in_flight", "Batches this worker is sending now.")
CAMPAIGNS_IN_FLIGHT = Gauge(
    "isseimail_dispatch_campaigns_in_flight", "Campaigns accepted or dispatching, not yet completed (whole fleet)."
)
RETRY_BACKLOG = Gauge("isseimail_dispatch_retry_backlog", "Recipients waiting for a retry (whole fleet).")
THROTTLE_EVENTS = Counter(
    "isseimail_dispatch_throttle_events_total",
    "Rate-limit replies (421/450/451 asking to slow down) by domain (those with their own limits; 'other' for the"
    " rest) and whether the domain's rate was lowered (decreased) or only its quiet window restarted (held).",
    ["domain", "action"],
)
DOMAIN_RATE = Gauge(
    "isseimail_dispatch_domain_rate_per_minute",
    "Fleet-wide messages per minute in force per domain: the preset and overridden domains, and domains"
    " throttled in the last day (at most 50), lowered after rate-limit replies (whole fleet).",
    ["domain"],
)


def initialise(domains: Iterable[str]) -> None:
    """Create the usual label sets at 0, so the first messages after start show in rate() and increase()."""
    for domain in [*domains, "other"]:
        for outcome, klass in (("sent", "2xx"), ("retry", "4xx"), ("retry", "net"), ("failed", "5xx")):
            MESSAGES.labels(outcome, klass, domain)
        ACTIVE_CONNECTIONS.labels(domain)
        for action in ("decreased", "held"):
            THROTTLE_EVENTS.labels(domain, action)


def reply_class(code: int | None) -> str:
    return "net" if code is None else f"{code // 100}xx"

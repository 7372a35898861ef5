"""Prometheus metrics shared by every service; names are prefixed isseimail_, labelled by service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "isseimail_http_requests_total", "HTTP requests served.", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "isseimail_http_request_duration_seconds",
    "HTTP request latency.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PUBLISHED = Counter("isseimail_events_published_total", "Events published to the broker.", ["service", "type"])
EVENTS_CONSUMED = Counter(
    "isseimail_events_consumed_total",
    "Messages consumed, by outcome (processed, duplicate, invalid, failed).",
    ["service", "queue", "outcome"],
)
WORK_MESSAGES = Counter(
    "isseimail_work_messages_total",
    "Work-queue messages consumed, by queue and outcome (processed, duplicate, invalid, failed).",
    ["queue", "outcome"],
)
OUTBOX_BACKLOG = Gauge("isseimail_outbox_backlog", "Outbox events not yet published.", ["service"])
READY = Gauge("isseimail_ready", "1 when the service's database and broker answer.", ["service"])
QUEUE_MESSAGES = Gauge(
    "isseimail_queue_messages",
    "Messages waiting in a queue this service consumes, or in its dead-letter queue (name ends in .dlq).",
    ["service", "queue"],
)

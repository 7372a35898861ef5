"""The delivery limit of the quorum queues as a RabbitMQ policy, set through the management HTTP API.

A queue argument (`x-delivery-limit`) is fixed when the queue is declared: changing ISSEIMAIL_DELIVERY_LIMIT
would need the queue deleted and declared again. A policy is not: every service, at start, PUTs the policy
`isseimail-delivery-limit` on its vhost (the same definition from each, so the order does not matter), and
RabbitMQ applies a new value to the existing queues at once. AMQP cannot set policies, hence the HTTP API
(the rabbitmq_management plugin); without ISSEIMAIL_RABBITMQ_MANAGEMENT_URL the queue argument is used.

The pattern matches every queue of the vhost but the dead-letter queues: a DLQ keeps what it holds.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

log = logging.getLogger(__name__)

POLICY_NAME = "isseimail-delivery-limit"
POLICY_PATTERN = r"^(?!.*\.dlq$)"
POLICY_PRIORITY = 0


class PolicyError(RuntimeError):
    """The management API refused or could not be reached; the message names no credentials."""


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names, as aiormq reads it ("/" when the path is empty or "/")."""
    path = urlsplit(amqp_url).path
    return "/" if path in ("", "/") else unquote(path[1:])


def _split_credentials(management_url: str) -> tuple[str, httpx.BasicAuth | None]:
    parts = urlsplit(management_url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/", "", ""))
    if parts.username is None:
        return bare, None
    return bare, httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))


def policy_definition(delivery_limit: int) -> dict[str, object]:
    return {
        "pattern": POLICY_PATTERN,
        "definition": {"delivery-limit": delivery_limit},
        "apply-to": "queues",
        "priority": POLICY_PRIORITY,
    }


async def apply_delivery_limit_policy(
    management_url: str, amqp_url: str, delivery_limit: int, *, timeout: float = 10.0
) -> None:
    """PUT the policy on the vhost of `amqp_url`; PolicyError when the API says no or cannot be reached."""
    base, auth = _split_credentials(management_url)
    vhost = vhost_of(amqp_url)
    url = f"{base}api/policies/{quote(vhost, safe='')}/{POLICY_NAME}"
    try:
        async with httpx.AsyncClient(auth=auth, timeout=timeout) as client:
            answer = await client.put(url, json=policy_definition(delivery_limit))
    except httpx.HTTPError as exc:
        raise PolicyError(f"RabbitMQ management API at {base} unreachable: {exc.__class__.__name__}") from None
    if answer.status_code not in (201, 204):
        raise PolicyError(f"RabbitMQ management API at {base} refused the policy: HTTP {answer.status_code}")
    log.info("policy %s on vhost %r: delivery-limit %d", POLICY_NAME, vhost, delivery_limit)

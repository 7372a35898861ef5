"""Unsubscribe requests (the mailto: to the listener, the one-click POST through the gateway).

A token names a delivery; the delivery's address (from deliveries.settled) and the campaign's sender
(from campaign.accepted) give the recipient and the sender organisation, and the token's MAC must match
both. Then the address is suppressed for that organisation, idempotently: a replayed request finds the
same row. A token of an unknown delivery costs the same HMAC as a known one, so the answer's timing does
not tell them apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
from prometheus_client import Counter

from isseimail_notifier import suppressions
from isseimail_shared.db import Conn
from isseimail_shared.unsubscribe import organisation_of, read_token, verify

UNSUBSCRIBES = Counter(
    "isseimail_notifier_unsubscribes_total",
    "Unsubscribe requests, by channel (mailto, one-click) and outcome (suppressed, repeated, refused).",
    ["channel", "outcome"],
)
CHANNELS = ("mailto", "one-click")
for _channel in CHANNELS:
    for _outcome in ("suppressed", "repeated", "refused"):
        UNSUBSCRIBES.labels(_channel, _outcome)


@dataclass(frozen=True)
class Target:
    campaign_id: uuid.UUID
    delivery_id: int
    recipient: str
    organisation: str


async def resolve(conn: Conn, secret: bytes, token: str) -> Target | None:
    """The delivery a token was made for, or None (malformed, unknown delivery, or a MAC that does not match)."""
    ref = read_token(token)
    if ref is None:
        return None
    row = await conn.fetchrow(
        "SELECT d.recipient, c.sender_email FROM delivered_to($1, $2) d JOIN campaigns c ON c.campaign_id = $1",
        ref.campaign_id,
        ref.delivery_id,
    )
    recipient = row["recipient"] if row else ""
    organisation = organisation_of(row["sender_email"]) if row else ""
    if not verify(secret, ref, recipient, organisation) or row is None:
        return None
    return Target(ref.campaign_id, ref.delivery_id, recipient, organisation)


async def unsubscribe(pool: asyncpg.Pool, secret: bytes, token: str, channel: str) -> Target | None:
    """Suppress the token's recipient for its sender organisation; None when the token is not valid."""
    async with pool.acquire() as conn, conn.transaction():
        target = await resolve(conn, secret, token)
        if target is None:
            UNSUBSCRIBES.labels(channel, "refused").inc()
            return None
        new = await suppressions.record_wish(
            conn,
            address=target.recipient,
            organisation=target.organisation,
            kind="unsubscribed",
            campaign_id=target.campaign_id,
        )
    UNSUBSCRIBES.labels(channel, "suppressed" if new else "repeated").inc()
    return target

"""The suppression list: a mailbox or domain that does not exist is suppressed for everyone at once; a
recipient's filter refusing a sender (指定受信), policy blocks and repeated soft failures suppress the address
for that sender organisation only; unsubscribes and spam complaints suppress it for one sender organisation.

Keyed by (address, scope): scope '*' (GLOBAL) for non-existence, which says the address takes no mail at all,
and the sender organisation (the From domain) for everything that is about one sender.
Addresses are keyed in lower case (the list validator asks with whatever case the CSV had).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from isseimail_notifier.reasons import REASONS, suppression_scope
from isseimail_shared.db import Conn

GLOBAL = "*"
KINDS = ("bounced", "unsubscribed", "complained")
# When an address is suppressed several ways, the answer names the strongest: a complaint, then an
# unsubscribe (both the recipient's own wish), then a bounce.
_RANK = "CASE kind WHEN 'complained' THEN 0 WHEN 'unsubscribed' THEN 1 ELSE 2 END"


@dataclass(frozen=True)
class SuppressionUpdate:
    address: str
    active: bool
    bounces: int


async def record_failure(
    conn: Conn,
    *,
    address: str,
    reason: str,
    hard: bool,
    campaign_id: uuid.UUID | None,
    soft_limit: int,
    organisation: str | None = None,
) -> SuppressionUpdate:
    """Count one failure of `address` where the reason's policy puts it; suppressed when hard, or after
    `soft_limit` soft ones.

    Non-existence (userunknown, hostunknown, ...) counts for every sender; a recipient's filter (filtered) at
    once and policy blocks or full/suspended mailboxes after repeats for the sender organisation only (given,
    or the From domain of the campaign's sender); any other reason (blocked, spam, rate limits, ...) says
    nothing about the address and suppresses nothing.
    """
    # A reason outside the taxonomy (an older caller's free text): hard ones still hold for everyone.
    kind = suppression_scope(reason) if reason in REASONS else "global" if hard else "organisation-counted"
    key = address.strip().lower()
    if kind == "none":
        return SuppressionUpdate(key, False, 0)
    scope = GLOBAL
    if kind != "global":
        if organisation is None and campaign_id is not None:
            sender = await conn.fetchval("SELECT sender_email FROM campaigns WHERE campaign_id = $1", campaign_id)
            organisation = str(sender).rpartition("@")[2] if sender else None
        if not organisation:
            return SuppressionUpdate(key, False, 0)  # no sender known: nothing to scope the failure to
        scope = organisation.strip().lower()
        hard = kind == "organisation"
    row = await conn.fetchrow(
        """
        INSERT INTO suppressions AS s (address, scope, reason, hard, bounces, active, source_campaign)
        VALUES ($1, $6, $2, $3, 1, $3 OR $5 <= 1, $4)
        ON CONFLICT (address, scope) DO UPDATE SET
            bounces = s.bounces + 1,
            last_seen = now(),
            reason = CASE WHEN s.kind <> 'bounced' OR (s.hard AND NOT EXCLUDED.hard) THEN s.reason
                ELSE EXCLUDED.reason END,
            hard = s.hard OR EXCLUDED.hard,
            active = s.active OR EXCLUDED.hard OR s.bounces + 1 >= $5,
            source_campaign = COALESCE(EXCLUDED.source_campaign, s.source_campaign)
        RETURNING address, active, bounces
        """,
        key,
        reason,
        hard,
        campaign_id,
        soft_limit,
        scope,
    )
    assert row is not None
    return SuppressionUpdate(row["address"], row["active"], row["bounces"])


async def record_wish(conn: Conn, *, address: str, organisation: str, kind: str, campaign_id: uuid.UUID | None) -> bool:
    """Suppress `address` for `organisation` (an unsubscribe or a complaint); True when it was not already.

    Idempotent: a replayed request touches the same row; a complaint after an unsubscribe upgrades the kind.
    """
    if kind not in ("unsubscribed", "complained"):
        raise ValueError(f"not a recipient's wish: {kind}")
    row = await conn.fetchrow(
        """
        INSERT INTO suppressions AS s (address, scope, kind, reason, hard, bounces, active, source_campaign)
        VALUES ($1, $2, $3, $3, true, 0, true, $4)
        ON CONFLICT (address, scope) DO UPDATE SET
            last_seen = now(),
            kind = CASE WHEN s.kind = 'complained' THEN s.kind ELSE EXCLUDED.kind END,
            reason = CASE WHEN s.kind = 'complained' THEN s.reason ELSE EXCLUDED.reason END,
            active = true,
            source_campaign = COALESCE(s.source_campaign, EXCLUDED.source_campaign)
        RETURNING (xmax = 0) AS inserted
        """,
        address.strip().lower(),
        organisation.strip().lower(),
        kind,
        campaign_id,
    )
    assert row is not None
    return bool(row["inserted"])


async def check(pool: asyncpg.Pool, addresses: list[str], organisation: str | None = None) -> dict[str, str]:
    """{address as asked: reason} for the suppressed ones among `addresses`.

    Without an organisation only bounces count (they hold for every sender); with one, that organisation's
    unsubscribes and complaints too. The reason is "complained" or "unsubscribed" for those, else the
    bounce reason.
    """
    by_key: dict[str, list[str]] = {}
    for address in addresses:
        by_key.setdefault(address.strip().lower(), []).append(address)
    scopes = [GLOBAL] if not organisation else [GLOBAL, organisation.strip().lower()]
    rows = await pool.fetch(
        f"SELECT DISTINCT ON (address) address, reason FROM suppressions "
        f"WHERE active AND address = ANY($1::text[]) AND scope = ANY($2::text[]) ORDER BY address, {_RANK}",
        list(by_key),
        scopes,
    )
    return {asked: row["reason"] for row in rows for asked in by_key[row["address"]]}


async def search(pool: asyncpg.Pool, q: str, limit: int, offset: int) -> tuple[int, list[asyncpg.Record]]:
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    total = await pool.fetchval("SELECT count(*) FROM suppressions WHERE active AND address LIKE $1", pattern)
    rows = await pool.fetch(
        "SELECT address, scope, kind, reason, hard, bounces, first_seen, last_seen, source_campaign FROM suppressions "
        "WHERE active AND address LIKE $1 ORDER BY last_seen DESC, address LIMIT $2 OFFSET $3",
        pattern,
        limit,
        offset,
    )
    return int(total), rows


async def remove(pool: asyncpg.Pool, address: str, reason: str, actor: str, scope: str | None = None) -> bool:
    """Delete an address from the list (every scope, or one) with an audit row each; False when not there."""
    key = address.strip().lower()
    async with pool.acquire() as conn, conn.transaction():
        scopes = await conn.fetch(
            "DELETE FROM suppressions WHERE address = $1 AND ($2::text IS NULL OR scope = $2) RETURNING scope",
            key,
            scope.strip().lower() if scope else None,
        )
        if not scopes:
            return False
        await conn.executemany(
            "INSERT INTO suppression_audit (address, action, reason, actor, scope) VALUES ($1, 'delete', $2, $3, $4)",
            [(key, reason, actor, row["scope"]) for row in scopes],
        )
    return True

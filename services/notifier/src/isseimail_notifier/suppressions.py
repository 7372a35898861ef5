"""The suppression list: hard bounces suppress an address at once, soft ones after repeated bounces.

Addresses are keyed in lower case (the list validator asks with whatever case the CSV had).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from isseimail_shared.db import Conn


@dataclass(frozen=True)
class SuppressionUpdate:
    address: str
    active: bool
    bounces: int


async def record_failure(
    conn: Conn, *, address: str, reason: str, hard: bool, campaign_id: uuid.UUID | None, soft_limit: int
) -> SuppressionUpdate:
    """Count one failure of `address`; it becomes suppressed when hard, or after `soft_limit` soft ones."""
    row = await conn.fetchrow(
        """
        INSERT INTO suppressions AS s (address, reason, hard, bounces, active, source_campaign)
        VALUES ($1, $2, $3, 1, $3 OR $5 <= 1, $4)
        ON CONFLICT (address) DO UPDATE SET
            bounces = s.bounces + 1,
            last_seen = now(),
            reason = CASE WHEN s.hard AND NOT EXCLUDED.hard THEN s.reason ELSE EXCLUDED.reason END,
            hard = s.hard OR EXCLUDED.hard,
            active = s.active OR EXCLUDED.hard OR s.bounces + 1 >= $5,
            source_campaign = COALESCE(EXCLUDED.source_campaign, s.source_campaign)
        RETURNING address, active, bounces
        """,
        address.strip().lower(),
        reason,
        hard,
        campaign_id,
        soft_limit,
    )
    assert row is not None
    return SuppressionUpdate(row["address"], row["active"], row["bounces"])


async def check(pool: asyncpg.Pool, addresses: list[str]) -> dict[str, str]:
    """{address as asked: reason} for the suppressed ones among `addresses`."""
    by_key: dict[str, list[str]] = {}
    for address in addresses:
        by_key.setdefault(address.strip().lower(), []).append(address)
    rows = await pool.fetch(
        "SELECT address, reason FROM suppressions WHERE active AND address = ANY($1::text[])", list(by_key)
    )
    return {asked: row["reason"] for row in rows for asked in by_key[row["address"]]}


async def search(pool: asyncpg.Pool, q: str, limit: int, offset: int) -> tuple[int, list[asyncpg.Record]]:
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    total = await pool.fetchval("SELECT count(*) FROM suppressions WHERE active AND address LIKE $1", pattern)
    rows = await pool.fetch(
        "SELECT address, reason, hard, bounces, first_seen, last_seen, source_campaign FROM suppressions "
        "WHERE active AND address LIKE $1 ORDER BY last_seen DESC, address LIMIT $2 OFFSET $3",
        pattern,
        limit,
        offset,
    )
    return int(total), rows


async def remove(pool: asyncpg.Pool, address: str, reason: str, actor: str) -> bool:
    """Delete an address from the list with an audit row; False when it was not there."""
    key = address.strip().lower()
    async with pool.acquire() as conn, conn.transaction():
        deleted = await conn.fetchval("DELETE FROM suppressions WHERE address = $1 RETURNING true", key)
        if not deleted:
            return False
        await conn.execute(
            "INSERT INTO suppression_audit (address, action, reason, actor) VALUES ($1, 'delete', $2, $3)",
            key,
            reason,
            actor,
        )
    return True

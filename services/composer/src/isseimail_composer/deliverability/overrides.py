"""Administrators' overrides of the send-time refusal, per sender domain, kept as an audit trail."""

from __future__ import annotations

from typing import Any

from isseimail_shared.contracts.composer import Override, OverrideRecord
from isseimail_shared.db import Conn


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


async def live(conn: Conn, domain: str) -> Override | None:
    row = await conn.fetchrow(
        "SELECT domain, reason, created_by, created_at FROM domain_overrides "
        "WHERE domain = $1 AND withdrawn_at IS NULL",
        domain,
    )
    if row is None:
        return None
    return Override(
        domain=row["domain"],
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=_iso(row["created_at"]) or "",
    )


async def create(conn: Conn, domain: str, actor: str, reason: str) -> Override | None:
    """The new override, or None when one is already in force (the partial unique index decides)."""
    row = await conn.fetchrow(
        "INSERT INTO domain_overrides (domain, reason, created_by) VALUES ($1, $2, $3) "
        "ON CONFLICT (domain) WHERE withdrawn_at IS NULL DO NOTHING RETURNING created_at",
        domain,
        reason,
        actor,
    )
    if row is None:
        return None
    return Override(domain=domain, reason=reason, created_by=actor, created_at=_iso(row["created_at"]) or "")


async def withdraw(conn: Conn, domain: str, actor: str, reason: str) -> bool:
    status = await conn.execute(
        "UPDATE domain_overrides SET withdrawn_by = $2, withdrawn_at = now(), withdraw_reason = $3 "
        "WHERE domain = $1 AND withdrawn_at IS NULL",
        domain,
        actor,
        reason,
    )
    return bool(status.endswith(" 1"))


async def history(conn: Conn, domain: str, limit: int = 50) -> list[OverrideRecord]:
    rows = await conn.fetch(
        "SELECT reason, created_by, created_at, withdrawn_by, withdrawn_at, withdraw_reason FROM domain_overrides "
        "WHERE domain = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        domain,
        limit,
    )
    return [
        OverrideRecord(
            reason=r["reason"],
            created_by=r["created_by"],
            created_at=_iso(r["created_at"]),
            withdrawn_by=r["withdrawn_by"],
            withdrawn_at=_iso(r["withdrawn_at"]),
            withdraw_reason=r["withdraw_reason"],
        )
        for r in rows
    ]

"""Passes: their state as of today, and the one-time consumption when sending is accepted."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Literal

import asyncpg

from isseimail_pass.audit import audit
from isseimail_pass.metrics import CONSUMPTIONS
from isseimail_shared.contracts.pass_service import PassListItem, PassOut
from isseimail_shared.db import Conn
from isseimail_shared.events import PassConsumed
from isseimail_shared.outbox import add_event

log = logging.getLogger(__name__)

EXPIRED = "この1DayPassは失効しています。再度申請してください。"


def state_of(row: asyncpg.Record, today: dt.date) -> str:
    if row["state"] == "consumed":
        return "consumed"
    if row["use_date"] < today:
        return "expired"
    if row["use_date"] > today:
        return "scheduled"
    return "active"


async def get_pass(conn: Conn, pass_id: int, today: dt.date) -> PassOut | None:
    row = await conn.fetchrow("SELECT id, user_id, use_date, state FROM passes WHERE id = $1", pass_id)
    if row is None:
        return None
    return PassOut(pass_id=row["id"], user_id=row["user_id"], use_date=row["use_date"], state=state_of(row, today))


async def list_passes(conn: Conn, today: dt.date, limit: int, offset: int) -> tuple[list[PassListItem], int]:
    rows = await conn.fetch(
        "SELECT p.id, p.user_id, p.use_date, p.state, p.consumed_at, p.campaign_id, p.application_id, "
        "a.applicant_name, a.applicant_email FROM passes p JOIN applications a ON a.id = p.application_id "
        "ORDER BY p.id DESC LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    total: int = await conn.fetchval("SELECT count(*) FROM passes")
    items = [
        PassListItem(
            pass_id=r["id"],
            user_id=r["user_id"],
            use_date=r["use_date"],
            state=state_of(r, today),
            application_id=r["application_id"],
            applicant_name=r["applicant_name"],
            applicant_email=r["applicant_email"],
            consumed_at=r["consumed_at"],
            campaign_id=r["campaign_id"],
        )
        for r in rows
    ]
    return items, total


async def consume(
    conn: Conn, pass_id: int, campaign_id: uuid.UUID, today: dt.date
) -> Literal["won", "refused", "unknown"]:
    """Flip the pass to consumed if it is still valid today; "won" only for the one call that did it.

    The UPDATE's WHERE is re-checked after the row lock is taken, so of any number of concurrent calls
    exactly one matches; pass.consumed goes to the outbox in the same transaction. Callers that come
    after the winner's commit match no row and take no lock at all.
    """
    async with conn.transaction():
        user_id: str | None = await conn.fetchval(
            "UPDATE passes SET state = 'consumed', consumed_at = now(), campaign_id = $2 "
            "WHERE id = $1 AND state = 'active' AND use_date = $3 RETURNING user_id",
            pass_id,
            campaign_id,
            today,
        )
        if user_id is not None:
            await audit(
                conn,
                actor=user_id,
                action="pass.consumed",
                subject=str(pass_id),
                detail={"campaign_id": str(campaign_id)},
            )
            await add_event(conn, PassConsumed(pass_id=pass_id, campaign_id=campaign_id, user_id=user_id))
            # Every session of the pass now only reads this campaign's progress (sessions.py).
            await conn.execute(
                "UPDATE sessions SET campaign_id = $2 WHERE pass_id = $1 AND revoked_at IS NULL", pass_id, campaign_id
            )
    if user_id is None:
        if not await conn.fetchval("SELECT true FROM passes WHERE id = $1", pass_id):
            return "unknown"
        CONSUMPTIONS.labels("refused").inc()
        return "refused"
    CONSUMPTIONS.labels("won").inc()
    log.info("pass %d consumed by campaign %s", pass_id, campaign_id)
    return "won"

"""Pause, resume and cancel a campaign (the administrator's console, through the gateway).

The campaign row's status is the fleet-wide switch: a worker parks a batch of a halted campaign when it
claims it and checks the status between messages at least every STATUS_CHECK_SECONDS (worker.py), so a
change reaches every worker within about a second. Pause and cancel then wait until no worker holds a batch
of the campaign, so when they answer nothing more of it is being sent. Resume hands the parked batches back
to the scheduler. Every change is recorded with its reason and actor in campaign_controls.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Literal

import asyncpg
from fastapi import APIRouter

from isseimail_shared.app import Db
from isseimail_shared.contracts.dispatcher import ControlOut, ControlRequest
from isseimail_shared.errors import ApiError

HALTED = ("paused", "cancelled")  # statuses whose batches a worker parks instead of sending
QUIESCE_SECONDS = 20.0  # how long pause/cancel wait for workers to put the campaign's batches down
NOT_FOUND = "指定された一斉メールは見つかりません。"
WRONG_STATE = {
    "pause": "送信中の一斉メールだけを一時停止できます。",
    "resume": "一時停止中の一斉メールだけを再開できます。",
    "cancel": "送信が終わった一斉メールは中止できません。",
}
FROM = {"pause": ("accepted", "dispatching"), "resume": ("paused",), "cancel": ("accepted", "dispatching", "paused")}
TO = {"pause": "paused", "resume": "dispatching", "cancel": "cancelled"}

router = APIRouter(prefix="/internal/campaigns", tags=["control"])


async def quiesce(pool: asyncpg.Pool, campaign_id: uuid.UUID, timeout: float = QUIESCE_SECONDS) -> int:
    """Wait until no live worker holds a batch of the campaign; returns how many still do at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        held: int = await pool.fetchval(
            "SELECT count(*) FROM batches WHERE campaign_id = $1 AND done_at IS NULL "
            "AND claimed_by IS NOT NULL AND claimed_until > now()",
            campaign_id,
        )
        if held == 0 or time.monotonic() > deadline:
            return held
        await asyncio.sleep(0.05)


async def _switch(
    pool: asyncpg.Pool, campaign_id: uuid.UUID, action: Literal["pause", "resume", "cancel"], body: ControlRequest
) -> str:
    """Change the status if the campaign is in a state the action applies to; returns the previous status."""
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchval("SELECT status FROM campaigns WHERE campaign_id = $1 FOR UPDATE", campaign_id)
        if current is None:
            raise ApiError(404, NOT_FOUND)
        if current == TO[action]:
            return str(current)  # already so: idempotent, not audited twice
        if current not in FROM[action]:
            raise ApiError(409, WRONG_STATE[action])
        await conn.execute(
            "UPDATE campaigns SET status = $2, finished_at = CASE WHEN $2 = 'cancelled' THEN now() END "
            "WHERE campaign_id = $1",
            campaign_id,
            TO[action],
        )
        if action == "resume":
            # Parked batches (published, never finished, held by nobody) go back to the scheduler.
            await conn.execute(
                "UPDATE batches SET published_at = NULL WHERE campaign_id = $1 AND done_at IS NULL "
                "AND (claimed_by IS NULL OR claimed_until < now())",
                campaign_id,
            )
        await conn.execute(
            "INSERT INTO campaign_controls (campaign_id, action, from_status, reason, actor) "
            "VALUES ($1, $2, $3, $4, $5)",
            campaign_id,
            action,
            current,
            body.reason,
            body.actor,
        )
        return str(current)


async def _counts(pool: asyncpg.Pool, campaign_id: uuid.UUID) -> dict[str, int]:
    # The campaign row's counters (outcome groups and cancel add to them): O(1), however large the campaign.
    row = await pool.fetchrow(
        "SELECT sent, failed, cancelled, total - sent - failed - cancelled AS open FROM campaigns "
        "WHERE campaign_id = $1",
        campaign_id,
    )
    assert row is not None
    return {k: int(row[k]) for k in ("sent", "failed", "cancelled", "open")}


def _id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(404, NOT_FOUND) from None


@router.post("/{campaign_id}/pause")
async def pause(campaign_id: str, body: ControlRequest, db: Db) -> ControlOut:
    """Stop sending; answers once no worker holds a batch of the campaign (`in_flight` 0)."""
    cid = _id(campaign_id)
    before = await _switch(db, cid, "pause", body)
    held = await quiesce(db, cid)
    return ControlOut(campaign_id=cid, status="paused", previous=before, in_flight=held, **await _counts(db, cid))


@router.post("/{campaign_id}/resume", response_model_exclude_none=True)  # no in_flight: nothing to wait for
async def resume(campaign_id: str, body: ControlRequest, db: Db) -> ControlOut:
    """Send again (also a campaign paused automatically for its failure rate: the reason is recorded)."""
    cid = _id(campaign_id)
    before = await _switch(db, cid, "resume", body)
    return ControlOut(campaign_id=cid, status="dispatching", previous=before, **await _counts(db, cid))


@router.post("/{campaign_id}/cancel")
async def cancel(campaign_id: str, body: ControlRequest, db: Db) -> ControlOut:
    """Stop for good: recipients not yet sent become `cancelled`; answers what was sent and what was not."""
    cid = _id(campaign_id)
    before = await _switch(db, cid, "cancel", body)
    held = await quiesce(db, cid)
    async with db.acquire() as conn, conn.transaction():
        # next_attempt_at cleared: a cancelled recipient is no longer waiting for a retry (progress counts those).
        stopped = await conn.fetchval(
            "WITH c AS (UPDATE deliveries SET state = 'cancelled', finished_at = now(), next_attempt_at = NULL "
            "WHERE campaign_id = $1 AND state IN ('pending', 'retrying', 'sending') RETURNING 1) "
            "SELECT count(*) FROM c",
            cid,
        )
        await conn.execute("UPDATE campaigns SET cancelled = cancelled + $2 WHERE campaign_id = $1", cid, stopped)
        await conn.execute("UPDATE batches SET done_at = now() WHERE campaign_id = $1 AND done_at IS NULL", cid)
    return ControlOut(campaign_id=cid, status="cancelled", previous=before, in_flight=held, **await _counts(db, cid))

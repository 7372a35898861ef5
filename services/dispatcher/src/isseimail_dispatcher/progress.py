"""GET /internal/campaigns/{id}/progress: status and counts, cheap enough to poll every second."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header

from isseimail_shared.app import Db
from isseimail_shared.contracts.dispatcher import Progress
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/internal", tags=["internal"])

NOT_FOUND = "指定された一斉メールは見つかりません。"


@router.get("/campaigns/{campaign_id}/progress")
async def progress(campaign_id: str, db: Db, x_isseimail_pass_id: Annotated[int, Header(ge=1, le=2**62)]) -> Progress:
    """The campaign of the pass the caller acts for (X-Isseimail-Pass-Id); any other campaign is "not found"."""
    try:
        cid = uuid.UUID(campaign_id)
    except ValueError:
        raise ApiError(404, NOT_FOUND) from None
    # The campaign's counters, plus its recipients waiting for a retry (the partial index holds only those):
    # cheap however large the campaign.
    campaign = await db.fetchrow(
        "SELECT pass_id, status, total, sent, failed, cancelled, bounced, delayed, started_at, finished_at, "
        "(SELECT count(*) FROM deliveries d WHERE d.next_attempt_at IS NOT NULL AND d.campaign_id = $1) AS retrying "
        "FROM campaigns WHERE campaign_id = $1",
        cid,
    )
    if campaign is None or campaign["pass_id"] != x_isseimail_pass_id:
        raise ApiError(404, NOT_FOUND)
    sent, failed, retrying = campaign["sent"], campaign["failed"], campaign["retrying"]
    cancelled = campaign["cancelled"]
    paused_by = None
    if campaign["status"] == "paused":  # an administrator's pause is recorded; otherwise the failure rate did it
        last = await db.fetchval(
            "SELECT action FROM campaign_controls WHERE campaign_id = $1 ORDER BY id DESC LIMIT 1", cid
        )
        paused_by = "administrator" if last == "pause" else "failure_rate"
    return Progress(
        campaign_id=cid,
        pass_id=campaign["pass_id"],
        status=campaign["status"],
        total=campaign["total"],
        sent=sent,
        retrying=retrying,
        failed=failed,
        cancelled=cancelled,
        paused_by=paused_by,
        bounced=campaign["bounced"],
        delayed=campaign["delayed"],
        pending=max(0, campaign["total"] - sent - failed - retrying - cancelled),
        started_at=campaign["started_at"].isoformat() if campaign["started_at"] else None,
        finished_at=campaign["finished_at"].isoformat() if campaign["finished_at"] else None,
    )

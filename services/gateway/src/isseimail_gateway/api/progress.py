"""Gateway JSON API: campaign progress read from the dispatcher (under /api/v1).

Polled every second by the 送信状況 page. Sending consumes the pass, so unlike the other routes this one
also accepts a session whose pass is *consumed* (its one campaign is what the user watches); an
expired pass or a forged cookie still gets 401. A campaign of another pass is "not found".
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from isseimail_gateway.session import SendingSessionDep, UpstreamsDep, own_campaign_id, pass_headers
from isseimail_gateway.upstream import UNAVAILABLE, parsed
from isseimail_shared.contracts.composer import DraftOut
from isseimail_shared.contracts.dispatcher import Progress
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["progress"])

NOT_FOUND = "指定された一斉メールが見つかりません。"

Status = Literal["draft", "accepted", "dispatching", "paused", "completed", "cancelled"]


class CampaignProgress(BaseModel):
    campaign_id: uuid.UUID
    status: Status
    total: int
    sent: int
    retrying: int
    failed: int
    bounced: int
    pending: int
    delayed: int = 0  # 遅延中: a delay notice came back, no final bounce (yet)
    cancelled: int = 0  # not sent because an administrator cancelled the campaign
    paused_by: Literal["administrator", "failure_rate"] | None = None  # who paused it (status paused)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


def _empty(campaign_id: uuid.UUID, status: Status) -> CampaignProgress:
    return CampaignProgress(
        campaign_id=campaign_id, status=status, total=0, sent=0, retrying=0, failed=0, bounced=0, pending=0
    )


@router.get(
    "/campaigns/{campaign_id}",
    response_model=CampaignProgress,
    responses={
        401: {"description": "ログインしていない、または1DayPassが失効している"},
        404: {"description": NOT_FOUND},
    },
)
async def campaign_progress(campaign_id: str, session: SendingSessionDep, upstreams: UpstreamsDep) -> CampaignProgress:
    """送信状況: status (draft, accepted, dispatching, paused, completed, cancelled) and the recipient counts."""
    cid = own_campaign_id(campaign_id, session, NOT_FOUND)
    response = await upstreams.call(
        "dispatcher", "GET", f"/internal/campaigns/{cid}/progress", headers=pass_headers(session)
    )
    if response.status_code == 200:
        found = parsed(response, Progress)
        if found.pass_id != session.pass_id:
            raise ApiError(404, NOT_FOUND)
        return CampaignProgress.model_validate(found.model_dump())
    if response.status_code != 404:
        raise ApiError(503, UNAVAILABLE)
    # Not (yet) at the dispatcher: a draft, or accepted a moment ago. The composer knows, for this pass only.
    draft = await upstreams.call("composer", "GET", f"/internal/campaigns/{cid}", headers=pass_headers(session))
    if draft.status_code != 200:
        raise ApiError(404, NOT_FOUND)
    return _empty(cid, "draft" if parsed(draft, DraftOut).state == "draft" else "accepted")

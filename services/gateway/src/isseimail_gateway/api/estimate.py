"""Gateway JSON API: a campaign's sending-time estimate, read from the dispatcher (under /api/v1).

Shown on 送信処理受付完了 next to the manual's half-day caveat. Like the progress route it accepts the session of
the consumed pass that sent the campaign; another pass's campaign is "not found". Until the dispatcher has taken
the campaign in (a moment after 一斉送信) the answer is 404 and the page asks again.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, Field

from isseimail_gateway.session import SendingSessionDep, UpstreamsDep, own_campaign_id, pass_headers
from isseimail_gateway.upstream import parsed
from isseimail_shared.contracts import dispatcher as contract
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["progress"])

NOT_FOUND = "指定された一斉メールが見つかりません。"


class DomainPace(BaseModel):
    domain: str
    recipients: int = Field(ge=0)
    per_minute: float = Field(gt=0, description="送信ペース（そのドメインへの毎分の送信数、現在の値）")


class CampaignEstimate(BaseModel):
    campaign_id: uuid.UUID
    recipients: int = Field(ge=0, description="送信先の数（送信者への控えを含む）")
    domains: int = Field(ge=0)
    seconds: float = Field(ge=0, description="送信時間の目安（秒）: 最も時間のかかるドメインの送信先数 ÷ 送信ペース")
    slowest: DomainPace | None = None


@router.get(
    "/campaigns/{campaign_id}/estimate",
    response_model=CampaignEstimate,
    responses={
        401: {"description": "ログインしていない、または1DayPassが失効している"},
        404: {"description": NOT_FOUND},
    },
)
async def campaign_estimate(campaign_id: str, session: SendingSessionDep, upstreams: UpstreamsDep) -> CampaignEstimate:
    """送信時間の目安: from the campaign's recipients per domain and the per-domain pacing in force."""
    cid = own_campaign_id(campaign_id, session, NOT_FOUND)
    response = await upstreams.call(
        "dispatcher", "GET", f"/internal/campaigns/{cid}/estimate", headers=pass_headers(session)
    )
    if response.status_code == 404:
        raise ApiError(404, NOT_FOUND)
    found = parsed(response, contract.CampaignEstimate)
    if found.pass_id != session.pass_id:  # the dispatcher checks too
        raise ApiError(404, NOT_FOUND)
    return CampaignEstimate.model_validate(found.model_dump(exclude={"pass_id"}))

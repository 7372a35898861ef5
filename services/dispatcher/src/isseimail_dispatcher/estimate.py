"""GET /internal/campaigns/{id}/estimate: how long sending should take at the per-domain pacing in force.

Domains are sent to in parallel, each at its own fleet-wide rate (preset, override or default, lowered by
adaptive shaping after rate-limit replies), so the estimate is the slowest domain's recipients over its rate.
It leaves out SMTP time per message and retries: a lower bound that shows the applicant the order of magnitude
(minutes here, where the old system needed half a day), not a promise. MX-based presets (direct-MX mode) are
not resolved here: a domain they would cover counts at the domain's own limit.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header

from isseimail_dispatcher import limits
from isseimail_dispatcher.adaptive import effective_per_minute
from isseimail_dispatcher.settings import DispatcherSettings
from isseimail_shared.app import Db, held
from isseimail_shared.contracts.dispatcher import CampaignEstimate, DomainPace
from isseimail_shared.errors import ApiError

router = APIRouter(prefix="/internal", tags=["internal"])

NOT_FOUND = "指定された一斉メールは見つかりません。"


SettingsDep = Annotated[DispatcherSettings, Depends(held(DispatcherSettings))]


def pace_seconds(recipients: int, per_minute: float) -> float:
    return recipients / per_minute * 60.0


@router.get("/campaigns/{campaign_id}/estimate", response_model=CampaignEstimate)
async def estimate(
    campaign_id: str, db: Db, settings: SettingsDep, x_isseimail_pass_id: Annotated[int, Header(ge=1, le=2**62)]
) -> CampaignEstimate:
    """The campaign of the pass the caller acts for (X-Isseimail-Pass-Id); any other campaign is "not found"."""
    try:
        cid = uuid.UUID(campaign_id)
    except ValueError:
        raise ApiError(404, NOT_FOUND) from None
    pass_id = await db.fetchval("SELECT pass_id FROM campaigns WHERE campaign_id = $1", cid)
    if pass_id is None or pass_id != x_isseimail_pass_id:
        raise ApiError(404, NOT_FOUND)
    counts = await db.fetch(
        "SELECT domain, count(*)::int AS n FROM deliveries WHERE campaign_id = $1 GROUP BY domain", cid
    )
    states = {r["domain"]: r for r in await limits.throttle_states(db, [r["domain"] for r in counts], 0.0, 0)}
    adapt = settings.adaptation()
    paces = []
    for row in counts:
        ceiling = float(settings.limit_for(row["domain"]).per_minute)
        state = states.get(row["domain"])
        rate = ceiling if state is None else effective_per_minute(limits.state_of(state), ceiling, adapt, state["now"])
        paces.append(DomainPace(domain=row["domain"], recipients=row["n"], per_minute=rate))
    slowest = max(paces, key=lambda p: pace_seconds(p.recipients, p.per_minute), default=None)
    return CampaignEstimate(
        campaign_id=cid,
        pass_id=pass_id,
        recipients=sum(p.recipients for p in paces),
        domains=len(paces),
        seconds=pace_seconds(slowest.recipients, slowest.per_minute) if slowest else 0.0,
        slowest=slowest,
    )

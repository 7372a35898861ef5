"""The sending-time estimate: the slowest domain's recipients over the per-domain rate in force (configured,
overridden, or lowered after rate-limit replies)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from isseimail_dispatcher import limits
from isseimail_dispatcher.app import create_app
from isseimail_testing.process import running_app

PASS = {"X-Isseimail-Pass-Id": "1"}  # the pass of the conftest's campaign.accepted


async def _estimate(api: httpx.AsyncClient, campaign_id: object, total: int) -> dict[str, Any]:
    """The estimate once every delivery row exists (the campaign.accepted event is consumed asynchronously)."""
    async with asyncio.timeout(30):
        while True:
            response = await api.get(f"/internal/campaigns/{campaign_id}/estimate", headers=PASS)
            if response.status_code == 200 and response.json()["recipients"] == total:
                body: dict[str, Any] = response.json()
                return body
            assert response.status_code in (200, 404), response.text
            await asyncio.sleep(0.05)


async def test_estimate_follows_the_pacing_in_force(
    fast_settings: Any, snapshot_peer: Any, make_recipients: Any, accept_campaign: Any, pool: asyncpg.Pool
) -> None:
    """100 at example.jp (120/min) and 12 at other.jp (overridden to 12/min): other.jp's 60 s is the estimate;
    after a rate-limit reply halves example.jp to 60/min, its 100 s is; unknown and malformed ids
    and another pass's campaign are 404."""
    rows = make_recipients(100, "example.jp") + make_recipients(12, "other.jp", start=101)
    campaign_id = snapshot_peer.add(rows)
    settings = fast_settings(domain_per_minute=120, domain_limits='{"other.jp": {"per_minute": 12}}')
    async with running_app(create_app(settings)) as api:
        await accept_campaign(campaign_id, len(rows))
        total = len(rows) + 1  # and the sender's own copy (corp.example.jp)
        first = await _estimate(api, campaign_id, total)
        assert first["pass_id"] == 1
        assert first["domains"] == 3
        assert first["slowest"] == {"domain": "other.jp", "recipients": 12, "per_minute": 12.0}
        assert abs(first["seconds"] - 60.0) < 1e-6

        await limits.record_rate_limit(
            pool, "example.jp", settings.limit_for("example.jp"), settings.adaptation(), "421 4.7.0 try again later"
        )
        throttled = await _estimate(api, campaign_id, total)
        assert throttled["slowest"] == {"domain": "example.jp", "recipients": 100, "per_minute": 60.0}
        assert abs(throttled["seconds"] - 100.0) < 1e-6

        for other in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
            assert (await api.get(f"/internal/campaigns/{other}/estimate", headers=PASS)).status_code == 404
        another = await api.get(f"/internal/campaigns/{campaign_id}/estimate", headers={"X-Isseimail-Pass-Id": "2"})
        assert another.status_code == 404  # another pass's campaign is not found
